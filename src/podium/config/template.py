"""The commented podium.yaml that ``podium init`` writes. It is valid as written (a test loads it)."""

TEMPLATE = """\
# podium.yaml — Podium's configuration. Every key is optional; unknown keys are errors.
# Values may use ${VAR} (must be set) or ${VAR:-default} (may be empty).
version: 1

# Providers. Known hosts (openai, anthropic, gemini, mistral, deepseek, openrouter, groq, together,
# publicai, ollama, vllm, llamacpp, lmstudio) turn on by themselves when their key variable is set
# (OPENAI_API_KEY, ANTHROPIC_API_KEY, ...); their base URLs follow OPENAI_BASE_URL, OLLAMA_HOST, ...
# Name one here only to change it. A new OpenAI-compatible host needs `kind: openai` and a base_url.
providers:
  local:                      # embedded llama.cpp; needs `pip install 'podium[local]'`
    options:
      n_ctx: 4096             # at most this context for the local models (less memory); without it each
                              # loads with its catalogue context_window (the router uses the same number)
      # n_threads: 2          # default: all cores
      # weights:              # extra GGUF files: model_id -> path
      #   my-model: ~/models/my-model.gguf
  # openai:
  #   api_key: ${OPENAI_API_KEY:-}
  #   base_url: ${OPENAI_BASE_URL:-https://api.openai.com/v1}
  #   timeout: 60
  # my-vllm:
  #   kind: openai
  #   base_url: http://127.0.0.1:8000/v1

# Catalogue changes: override fields of bundled models, or add new ones (complete rows).
models: {}
  # gpt-4o-mini:
  #   input_price: 0.15
  # my-model:
  #   provider: local
  #   model_id: my-model
  #   display_name: My model
  #   context_window: 8192
  #   input_price: 0
  #   output_price: 0
  #   tier: fast
  #   region: local
  #   local: true

routing:
  default: smollm2-135m       # used when a request names no model and no rule matches
  baseline_model: gpt-4o      # reports show savings against this model
  rules: []
  #  - {task_type: code, model: gpt-4o-mini}
  # embedding_model: minilm-l6   # /v1/embeddings, Podium.embed and the semantic cache without a model

ledger:
  enabled: true
  # path: ~/.local/share/podium/ledger.sqlite3
  # postgres_dsn: postgresql://127.0.0.1/podium   # one ledger for several gateway instances

# defaults:                   # for requests that leave these unset
#   max_tokens: 1024          # unset: the provider's own default (a local model writes until it stops)
#   temperature: 0.7

# `podium serve`: the OpenAI-compatible gateway.
# gateway:
#   port: 4000
#   state: memory              # redis: limits, budgets, caches and open circuits shared by instances
#   redis_url: redis://127.0.0.1:6379/0
#   middleware: [auth, guardrails, cache, limits, budget, metrics]
#   rpm: 600                   # default per key
#   teams:
#     research: {budget: 200, budget_period: month, rpm: 600}
#   cache:
#     enabled: true
#     ttl: 300
#     semantic: true
#     semantic_model: minilm-l6   # default: routing.embedding_model (local all-MiniLM-L6-v2)
#     semantic_threshold: 0.95
#   guardrails: {pii: route_local, secrets: redact, injection: flag}

# The dashboard `podium serve` shows at /dashboard/ (on unless turned off). Who may look: the admin key, or
# a virtual key whose scope lists `dashboard` (`podium keys create ops --models dashboard`: it reads the
# pages and can call no model). `podium dashboard --ledger FILE_OR_DSN` shows them without a gateway.
# dashboard:
#   enabled: true              # false: no /dashboard pages or endpoints at all
#   refresh_seconds: 30        # the pages' default auto-refresh; 0: off

# Work packages (`podium work plan|run`, docs/work-packages.md): which models play conductor, worker and
# reviewer (first preferred, the rest its fallbacks), external coding agents, and the run's limits.
# work:
#   preset: team               # or a built-in one: production, budget, privacy-first
#   presets:
#     team:
#       conductor: [claude-sonnet-4-5]
#       worker: [deepseek-chat, mistral-small]
#       reviewer: [apertus-70b]
#       preset: privacy-first  # a routing preset held on every call of the run (regions)
#   agents:
#     aider: {command: [aider, --model, "openai/{model}", --message-file, "{message_file}", --yes-always,
#                       --no-auto-commits, "{files}"], timeout: 900}
#   max_parallel: 2
#   max_revisions: 2           # times a failed check or a review goes back to the worker
#   budget: 5.0                # USD for every call of one run (a package's front matter may set its own)

# OpenTelemetry spans (pip install 'podium[otel]'):
# telemetry:
#   enabled: true
#   otlp_endpoint: http://127.0.0.1:4318
"""
