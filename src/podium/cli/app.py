"""Command definitions only. Heavy imports (pydantic models, aiohttp, llama.cpp) happen inside the
commands, so ``podium --help`` stays fast."""

from __future__ import annotations

from typing import Annotated

import typer

from podium.cli.errors import handle_errors

app = typer.Typer(name="podium", no_args_is_help=True, add_completion=False, rich_markup_mode=None,
                  help="Run many language models as one: route, fail over, and account for every call.")
providers_app = typer.Typer(no_args_is_help=True, help="Inspect the configured providers.")
app.add_typer(providers_app, name="providers")
keys_app = typer.Typer(no_args_is_help=True, help="Manage the gateway's virtual keys.")
app.add_typer(keys_app, name="keys")
router_app = typer.Typer(no_args_is_help=True, help="Fit learned routers for routing.router: learned.")
app.add_typer(router_app, name="router")
work_app = typer.Typer(no_args_is_help=True, help="Work packages: a conductor plans, workers implement in git "
                       "worktrees, a quality gate checks and reviews, approved branches merge.")
app.add_typer(work_app, name="work")

ConfigOption = Annotated[str | None, typer.Option("--config", "-c", help="Path to podium.yaml.",
                                                  envvar="PODIUM_CONFIG")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]


@app.command()
@handle_errors
def ask(
    prompt: Annotated[str, typer.Argument(help="The question or instruction.")],
    model: Annotated[str | None, typer.Option("--model", "-m", help="Model or strategy name; default: routed.")] = None,
    strategy: Annotated[str | None, typer.Option("--strategy", help="cascade, vote, consensus, debate, mixture, "
                                                 "pipeline, fast-vote, or a strategy named in the config.")] = None,
    models: Annotated[str | None, typer.Option("--models", help="Comma-separated models for --strategy.")] = None,
    stream: Annotated[bool, typer.Option("--stream", help="Print tokens as they arrive.")] = False,
    task_type: Annotated[str | None, typer.Option("--task-type", "-t", help="Task type for routing rules.")] = None,
    preset: Annotated[str | None, typer.Option("--preset", "-p",
                                               help="production, budget or privacy-first.")] = None,
    sensitivity: Annotated[str, typer.Option("--sensitivity", "-s",
                                             help="public, internal or confidential.")] = "public",
    tag: Annotated[list[str] | None, typer.Option("--tag", help="Request tags, e.g. area:core.")] = None,
    system: Annotated[str | None, typer.Option("--system", help="A system prompt.")] = None,
    max_tokens: Annotated[int | None, typer.Option("--max-tokens", help="Cap on output tokens.")] = None,
    temperature: Annotated[float | None, typer.Option("--temperature", help="0 to 2.")] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Sampling seed, for repeatable answers.")] = None,
    show_trace: Annotated[bool, typer.Option("--trace/--no-trace", "--show-trace",
                                             help="Show the route and the call tree.")] = True,
    json_output: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Ask a question; print the answer, how it was routed and what it cost."""
    from podium.cli.ask import run_ask, strategy_model

    model = strategy_model(strategy, models, model)
    run_ask(prompt, model=model, stream=stream, task_type=task_type, preset=preset, sensitivity=sensitivity,
            tags=tag or [], system=system, max_tokens=max_tokens, temperature=temperature, seed=seed,
            show_trace=show_trace, json_output=json_output, config=config)


@app.command()
@handle_errors
def models(
    capability: Annotated[str | None, typer.Option(help="e.g. code, planning, vision, tools.")] = None,
    tier: Annotated[str | None, typer.Option(help="fast, standard or advanced.")] = None,
    provider: Annotated[str | None, typer.Option(help="Only this provider's models.")] = None,
    region: Annotated[str | None, typer.Option(help="eu, us, ch, cn, global or local.")] = None,
    max_cost: Annotated[float | None, typer.Option(help="Max blended USD per million tokens.")] = None,
    min_context: Annotated[int | None, typer.Option(help="Minimum context window in tokens.")] = None,
    all_models: Annotated[bool, typer.Option("--all", help="Include models of providers that are off.")] = False,
    json_output: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """List the model catalogue (by default only models whose provider is on)."""
    from podium.cli.listing import run_models

    run_models(capability=capability, tier=tier, provider=provider, region=region, max_cost=max_cost,
               min_context=min_context, all_models=all_models, json_output=json_output, config=config)


@providers_app.command("check")
@handle_errors
def providers_check(json_output: JsonOption = False, config: ConfigOption = None) -> None:
    """Check every provider concurrently: is it on, why, and does it answer."""
    from podium.cli.listing import run_providers_check

    run_providers_check(json_output=json_output, config=config)


@app.command()
@handle_errors
def report(
    json_output: JsonOption = False,
    since_hours: Annotated[float | None, typer.Option("--since-hours", help="Only the last N hours.")] = None,
    config: ConfigOption = None,
    experiment: Annotated[str | None, typer.Option("--experiment", help="Compare the arms of this A/B experiment "
                                                   "(95 % intervals, differences against control).")] = None,
    shadow: Annotated[str | None, typer.Option("--shadow", help="This shadow trial's agreement, saving and "
                                               "latency per task type.")] = None,
) -> None:
    """What every call cost and took, per model and per task type, and savings against the baseline."""
    from podium.cli.report import run_report

    run_report(json_output=json_output, since_hours=since_hours, config=config, experiment=experiment,
               shadow=shadow)


@app.command()
@handle_errors
def init(
    path: Annotated[str, typer.Option(help="Where to write the file.")] = "podium.yaml",
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented podium.yaml with the defaults."""
    from podium.cli.init import run_init

    run_init(path, force=force)


@app.command()
@handle_errors
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on (default: gateway.host).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: gateway.port, 4000).")] = None,
    no_auth: Annotated[bool, typer.Option("--no-auth", help="Accept requests without a key (local use).")] = False,
    log_level: Annotated[str, typer.Option("--log-level", help="debug, info, warning, error or critical: "
                                           "Podium's lines on stderr (one per request at info).")] = "info",
    config: ConfigOption = None,
) -> None:
    """Run the OpenAI-compatible gateway (uvicorn, uvloop, httptools)."""
    from podium.cli.serve import run_serve

    run_serve(host=host, port=port, no_auth=no_auth, config=config, log_level=log_level)


@app.command("eval")
@handle_errors
def eval_(
    dataset: Annotated[str, typer.Argument(help="A Podium eval .jsonl, or a RouteLLM folder (routellm/mmlu, "
                                           "routellm/gsm8k).")],
    folds: Annotated[int, typer.Option("--folds", help="Cross-fitting folds (2 or more).")] = 5,
    seed: Annotated[int, typer.Option("--seed", help="Seed for the folds and the random router.")] = 0,
    out: Annotated[str, typer.Option("--out", help="Directory for <dataset>.md and <dataset>.svg.")] = "podium-eval",
    router: Annotated[str, typer.Option("--router", help="Learned routers to cross-fit as well, comma-separated: "
                                        "knn, logistic, mlp, mf, ensemble.")] = "",
    train_on: Annotated[str | None, typer.Option("--train-on", help="Also fit the learned routers on all of this "
                                                 "dataset and score DATASET with them (not cross-fitted).")] = None,
    cascade: Annotated[bool, typer.Option("--cascade", help="Replay a weak → strong cascade on the weak model's "
                                          "recorded answers (RouteLLM's gsm8k) instead of routers.")] = False,
    target: Annotated[float | None, typer.Option("--target", help="With --cascade: calibrate the least-cost "
                                                 "threshold keeping this share of the strong model's accuracy, "
                                                 "e.g. 0.95 (cross-fitted).")] = None,
    online: Annotated[bool, typer.Option("--online", help="Stream the prompts through the online bandit router, "
                                         "revealing only the chosen model's outcome: regret, and the second "
                                         "half against the static heuristic.")] = False,
    explore: Annotated[float | None, typer.Option("--explore", help="With --online: share of prompts sent to a "
                                                  "random model (0..1, default 0.1).")] = None,
    knob: Annotated[float | None, typer.Option("--knob", help="With --online: 0 cheapest … 1 best (default 0.9).")]
    = None,
) -> None:
    """Replay routing baselines on recorded answers: RouteLLM's APGR and CPT, RouterBench's AIQ, curves."""
    if online or explore is not None or knob is not None:
        from podium.cli.evaluate_online import run_online_eval

        others = [name for name, used in (("--router", bool(router)), ("--train-on", train_on is not None),
                                          ("--cascade", cascade), ("--target", target is not None)) if used]
        run_online_eval(dataset, online=online, explore=explore, knob=knob, seed=seed, out=out, others=others)
        return
    from podium.cli.evaluate import run_eval

    run_eval(dataset, folds=folds, seed=seed, out=out, routers=router, train_on=train_on, cascade=cascade,
             target=target)


@router_app.command("train")
@handle_errors
def router_train(
    out: Annotated[str, typer.Option("--out", help="The router file to write (.npz).")],
    dataset: Annotated[str | None, typer.Argument(help="A Podium eval .jsonl, or a RouteLLM folder (routellm/mmlu)."
                                                  )] = None,
    kind: Annotated[str, typer.Option("--kind", help="knn, logistic, mlp, mf, ensemble (knn + logistic) or bandit "
                                      "(learns online; starts from these rows).")] = "knn",
    knob: Annotated[float, typer.Option("--knob", help="Default knob written in the file: 0 cheapest ... 1 best.")
                    ] = 0.9,
    folds: Annotated[int, typer.Option("--folds", help="Folds for the held-out metrics (2 or more).")] = 5,
    seed: Annotated[int, typer.Option("--seed", help="Seed for the folds.")] = 0,
    ledger: Annotated[str | None, typer.Option("--ledger", help="Fit on the ledger instead of a dataset: a SQLite "
                                               "ledger file or a PostgreSQL DSN whose requests have stored "
                                               "embeddings (ledger.store_embeddings) and feedback.")] = None,
    labels: Annotated[str | None, typer.Option("--labels", help="With --ledger: the labels to learn from, comma-"
                                               "separated: feedback (/v1/feedback), agreement (vote and consensus "
                                               "members against a strict majority), verifier (cascade verdicts). "
                                               "Default: all three.")] = None,
) -> None:
    """Fit a learned router on an eval dataset, print its cross-fitted metrics, write the router file."""
    from podium.cli.router_train import run_router_train

    if ledger is not None or dataset is None:
        from podium.cli.router_ledger import run_router_train_ledger

        run_router_train_ledger(ledger, dataset, kind=kind, knob=knob, out=out, labels_kinds=labels)
        return
    if labels is not None:
        from podium.errors import ConfigError

        raise ConfigError("--labels chooses the ledger's labels: use it with --ledger")

    run_router_train(dataset, kind=kind, knob=knob, out=out, folds=folds, seed=seed)


@keys_app.command("create")
@handle_errors
def keys_create(
    name: Annotated[str, typer.Argument(help="A label for the key, e.g. the team or app.")],
    models: Annotated[str | None, typer.Option(
        help="Comma-separated names it may use: catalogue models or aliases, strategies named in the config, "
             "auto (routed) or a strategy kind (consensus, vote, …); dashboard lets it read /dashboard. An "
             "inline strategy with members (consensus:a,b) cannot be written here: name it under strategies in "
             "the config and give that name.")] = None,
    budget: Annotated[float | None, typer.Option(help="USD it may spend per period (0 or more).")] = None,
    period: Annotated[str, typer.Option(help="total, day or month.")] = "total",
    rpm: Annotated[int | None, typer.Option(help="Requests per minute (1 or more).")] = None,
    tpm: Annotated[int | None, typer.Option(help="Tokens per minute (1 or more).")] = None,
    team: Annotated[str | None, typer.Option(help="A team from gateway.teams; its budget and limits apply too.")]
    = None,
    config: ConfigOption = None,
) -> None:
    """Create a virtual key; it is printed once and stored only as a hash."""
    from podium.cli.serve import run_keys_create

    run_keys_create(name, models=models, budget=budget, period=period, rpm=rpm, tpm=tpm, team=team, config=config)


@keys_app.command("list")
@handle_errors
def keys_list(json_output: JsonOption = False, config: ConfigOption = None) -> None:
    """List virtual keys (never the keys themselves)."""
    from podium.cli.serve import run_keys_list

    run_keys_list(json_output=json_output, config=config)


@keys_app.command("revoke")
@handle_errors
def keys_revoke(key_id: Annotated[str, typer.Argument(help="The key's id (key_…).")],
                config: ConfigOption = None) -> None:
    """Revoke a key; gateways stop accepting it within seconds."""
    from podium.cli.serve import run_keys_revoke

    run_keys_revoke(key_id, config=config)


@app.command()
@handle_errors
def dashboard(
    ledger: Annotated[str | None, typer.Option("--ledger", help="A SQLite ledger file or a PostgreSQL DSN "
                                               "(default: the config's ledger).")] = None,
    host: Annotated[str, typer.Option(help="Address to listen on; off loopback a key is required.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 4001,
    key: Annotated[str | None, typer.Option("--key", help="The key the pages must present (better: "
                                            "$PODIUM_DASHBOARD_KEY, which no process list shows).")] = None,
    keys_file: Annotated[str | None, typer.Option("--keys", help="A gateway's SQLite keys file, for key names and "
                                                  "budgets (default: keys.sqlite3 beside the ledger).")] = None,
    refresh: Annotated[int | None, typer.Option("--refresh", help="The pages' default auto-refresh in seconds "
                                                "(0: off; default: dashboard.refresh_seconds).")] = None,
    config: ConfigOption = None,
) -> None:
    """Serve the dashboard over a ledger, without a gateway (no key needed on loopback)."""
    from podium.cli.dashboard import run_dashboard

    run_dashboard(ledger=ledger, host=host, port=port, key=key, keys_file=keys_file, config=config, refresh=refresh)


RepoOption = Annotated[str, typer.Option("--repo", help="The git repository to work in.")]
PresetOption = Annotated[str | None, typer.Option("--preset", "-p", help="production, budget, privacy-first, "
                                                  "or one under work.presets.")]


@work_app.command("plan")
@handle_errors
def work_plan(
    package: Annotated[str, typer.Argument(help="The work package (Markdown).")],
    repo: RepoOption = ".",
    out: Annotated[str | None, typer.Option("--out", "-o", help="Where to write the plan; default: "
                                            "PACKAGE.plan.yaml beside the package.")] = None,
    preset: PresetOption = None,
    max_subtasks: Annotated[int, typer.Option("--max-subtasks", min=1, max=12,
                                              help="At most this many subtasks.")] = 6,
    force: Annotated[bool, typer.Option("--force", help="Replace a plan file that exists (an edited plan is "
                                        "otherwise kept).")] = False,
    config: ConfigOption = None,
) -> None:
    """Have the conductor plan a package into subtasks, as a YAML file to review and edit."""
    from podium.cli.work import run_plan

    run_plan(package, repo=repo, out=out, preset=preset, max_subtasks=max_subtasks, force=force, config=config)


@work_app.command("run")
@handle_errors
def work_run(
    package: Annotated[str, typer.Argument(help="The work package (Markdown).")],
    repo: RepoOption = ".",
    plan: Annotated[str | None, typer.Option("--plan", help="Run this plan (from podium work plan) instead of "
                                             "asking the conductor.")] = None,
    preset: PresetOption = None,
    worker: Annotated[str | None, typer.Option("--worker", help="editor (Podium's own) or an agent: aider, or "
                                               "one under work.agents.")] = None,
    budget: Annotated[float | None, typer.Option("--budget", help="USD for the whole package.")] = None,
    deadline: Annotated[float | None, typer.Option("--deadline", help="Seconds for the whole run.")] = None,
    parallel: Annotated[int | None, typer.Option("--parallel", "-j", min=1, max=16,
                                                 help="Subtasks worked on at once.")] = None,
    check: Annotated[str | None, typer.Option("--check", help="The check command (overrides the package's).")] = None,
    resume: Annotated[str | None, typer.Option("--resume", help="Resume a stopped run: its id, or 'latest'.")] = None,
    retry_failed: Annotated[bool, typer.Option("--retry-failed", help="With --resume: try failed, rejected and "
                                               "conflicting subtasks again.")] = False,
    report: Annotated[str | None, typer.Option("--report", help="Also write the Markdown report here.")] = None,
    config: ConfigOption = None,
) -> None:
    """Run a work package: subtasks in git worktrees, checked, reviewed, merged into an integration branch."""
    from podium.cli.work import run_work

    run_work(package, repo=repo, plan=plan, preset=preset, worker=worker, budget=budget, deadline=deadline,
             parallel=parallel, check=check, resume=resume, retry_failed=retry_failed, report=report, config=config)
