"""The signals of the prompt-injection score: multilingual patterns, their weights, and their trigger words.

Why a table: each signal is one thing attacks do (override the instructions, switch to a persona
without rules, ask for the hidden prompt, spoof a ``### System:`` block, address "the AI" inside a
document, hide or send data…), written once for English, German, French, Spanish, Italian,
Portuguese, Dutch and Polish. ``injection`` folds the text, adds the weights of the signals found
and compares the sum with its threshold; the weights were tuned on the ``dev`` half of
``tests/data/injection/prompts.jsonl`` only.

Why so careful about speed: every alternation is grouped by first letter (``_words``) and every gap
is bounded and walked word by word, so a pattern costs linear time with a small constant; and a
pattern runs only if the text has its trigger words (``Signal.needs``), a set test that costs
~0.1 µs where the pattern costs 5-25 µs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


def _words(*alternatives: str) -> str:
    """An alternation, grouped by first letter: the engine tries one group per position, not every word."""
    groups: dict[str, list[str]] = {}
    rest: list[str] = []
    for alternative in alternatives:
        if len(alternative) > 1 and alternative[0].isalpha() and alternative[1] not in "?*+{|":
            groups.setdefault(alternative[0], []).append(alternative[1:])
        else:
            rest.append(alternative)
    parts = [first + (tails[0] if len(tails) == 1 else "(?:" + "|".join(tails) + ")")
             for first, tails in groups.items()]
    return "(?:" + "|".join(parts + rest) + ")"


# The rest of the clause, bounded (no pattern scans far), and not about someone else's rules ("its
# programming", "the team's rules", "my previous question")
_THEIRS = re.compile(r"\b(?:its|their|his|her|my|our|the team'?s?|mein\w*|sein\w*|ihr\w*|unser\w*|mon|ma|mes|son|sa|"
                     r"ses|leurs?|notre|nos|mis?|sus?|nuestr\w*|suo|sua|mio|mia|seu|meu|minha|mijn|zijn|haar|ons)\b")
# up to twelve words in between, tried word by word (not character by character); a match whose gap names
# someone else (_THEIRS) does not count
_GAP = r"(?P<gap>(?:[^\w.!?\n]{1,8}+\w{1,30}+){0,12}?[^\w.!?\n]{1,8}+)"
_DOTTED_GAP = r"(?:\.\s{1,3}\w{1,10}){1,3}\.\s{1,3}"  # IGNORE. ALL. PREVIOUS. INSTRUCTIONS.

_OVERRIDE = _words(
    r"ignore", r"ignor(?:iere|ier|ieren|ez|a|ar|e|uj)", r"disregard", r"forget", r"override", r"bypass", r"circumvent",
    r"scrap", r"set aside", r"put aside", r"discard", r"skip", r"do not follow", r"don'?t follow", r"stop following",
    r"no longer follow", r"never mind", r"vergiss", r"vergessen sie", r"missachte", r"übergehe", r"oublie[sz]?",
    r"ne tiens pas compte (?:de|des)", r"fais abstraction (?:de|des)", r"olvida[rs]?", r"olvide", r"omite",
    r"descarta", r"haz caso omiso (?:de|a)", r"dimentica", r"esque(?:ça|ca|cer)", r"desconsidere", r"negeer",
    r"vergeet", r"zignoruj", r"zapomnij")
_RULES = _words(  # every alternative starts with a letter, so the engine tries one group per word start
    r"instruc\w*", r"instruk\w*", r"instru[çc][õo]es", r"istruzion\w*", r"anweisung\w*", r"richtlinie\w*",
    r"vorgaben", r"befehle", r"consignes?", r"directives?", r"directions", r"directrices", r"indicaciones",
    r"guidelines?", r"guidance", r"rules?", r"regeln?", r"règles?", r"regles?", r"reglas", r"regole", r"regras",
    r"normas", r"zasady", r"prompts?", r"system ?(?:message|prompt)", r"systemprompt\w*", r"programming",
    r"constraints", r"restrictions", r"polic(?:y|ies)", r"guardrails", r"safety (?:training|rules|guidelines)",
    r"everything(?: you(?:'ve| have)? been told| (?:that )?(?:was|were) said| above| before)",
    r"all(?: you(?:'ve| have)? been told| (?:that )?(?:was|were) said| above| before)",
    r"anything you(?:'ve| have)? been told", r"what(?:ever)? (?:above|before)", r"the above", r"the task",
    r"the summary request", r"the proofreading", r"the rubric", r"ci-dessus", r"above", r"your task", r"ta tâche",
    r"la tâche", r"tu tarea", r"la tarea", r"deine aufgabe", r"die aufgabe", r"die zusammenfassung", r"il compito",
    r"il riassunto", r"a tarefa", r"o resumo", r"de taak", r"de samenvatting", r"summary request",
    r"zusammenfassung", r"le résumé", r"résumé", r"el resumen", r"resumen", r"riassunto", r"resumo", r"samenvatting",
    r"prior criteria", r"alles,? was (?:dir|man dir)", r"tout ce qu'on t'a", r"todo lo que te",
    r"tutto quello che ti", r"tudo o que", r"alles wat je", r"wszystkie poprzednie")

_EXTRACT_VERBS = _words(
    "reveal", "show", "print", "output", "repeat", "display", "tell me", "give me", "dump", "paste", "recite",
    "spell out", "translate", "summari[sz]e", "list", "quote", "copy", "write out", "leak", "share", "complete",
    "finish", "what (?:is|are|were|was|did)", "zeig", "gib", "verrat", "verrät", "wiederhol", "nenn", "übersetze?",
    "druck", "wie lautet", "montre", "affiche", "r[ée]v[èe]le", "r[ée]p[èe]te", "recopie", "donne", "dis-?moi",
    "traduis", "imprime", "quel est", "mu[ée]str", "revela", "repite", "c[óo]pia", "dime", "dame", "traduce",
    "ens[ée]ñ", "cu[áa]l es", "mostr", "riporta", "rivela", "qual [èée]", "herhaal", "toon", "geef", "wat is", "podaj")
_SECRETS = _words(  # every alternative starts with a letter (or /), for the same reason
    "system ?(?:prompt|message)", "systemprompt", r"systemanweisung\w*", "systemnachricht",
    "prompt (?:système|systeme|del sistema|di sistema|do sistema)", "message (?:système|systeme)",
    "mensaje del sistema", "systeemprompt", *(f"{adjective} (?:prompt|instructions|rules)" for adjective in (
        "initial", "original", "hidden", "secret", "first", "full", "exact", "real")),
    "pre-?prompt",
    r"your (?:hidden |secret |real |full |initial )?(?:prompt|instructions|rules|configuration|config)\b",
    "instructions (?:you were|you've been|that you were) given", "text above", "words above", "everything above",
    "lines above", "context window", "developer notes",
    *(rf"{adjective}\w* (?:anweisung|regel)\w*" for adjective in ("ursprüngliche", "versteckte", "geheime", "deine")),
    "instructions (?:initiales|secrètes|internes|système)", "règles cachées",
    "instrucciones (?:iniciales|secretas|internas|del sistema)", "reglas ocultas", "istruzioni iniziali",
    "instruções iniciais", r"admin\w*(?:-| )?(?:password|passwort|token)", "mot de passe (?:administrateur|admin)",
    "contraseña del administrador", "password dell'amministratore", "senha do administrador", "beheerderswachtwoord",
    "hasło administratora", "environment variables", "umgebungsvariablen", "/etc/(?:passwd|shadow)",
    "api[- ]?(?:keys?|schlüssel)", "before my (?:first )?message", "activation keys", "license keys", "licence keys",
    "product keys", "jeton d'accès", "token de acceso", "admin-?token", "zugangsdaten", "credentials", "identifiants",
    "credenciales")

_VOID = _words(
    "no longer (?:apply|valid|bound|exist)",
    "(?:are|is|were) (?:now )?(?:void|invalid|deleted|cancel+ed|outdated|lifted|suspended|a test|wrong)",
    "nicht mehr", "ungültig", "ne s'appliquent plus", "sont annulées", "ya no se aplican", "quedan anuladas",
    "non valgono più", "já não se aplicam", "gelten nicht")
_MARKUP_TOKENS = _words(
    r"<\|im_start\|>", r"<\|?system\|?>", r"<</?sys>>", r"\[/?inst\]", r"</?system>", r"</user>", r"\*\*system",
    "```system", "={2,} ?admin", "assistant instructions", "admin message", "system note", "system override",
    r"\"role\": ?\"system\"[^}\n]{0,200}(?:ignore|must|rules)")
_NOTE_WORDS = _words("note", "message", "instructions?", "attention", "hinweis", "anweisung", "nota", "instrucción",
                     "important", "wichtig", "importante", "opmerking", r"p\.?s\.?")
_LABELS = _words("ai", "ki", "ia", "assistant", "chatgpt", "ai model", "(?:ai|assistant|model) instructions?")
_SEND_WORDS = _words("forward", "send", "e-?mail", "transfer", "upload", "post", r"weiterleit\w*", r"leite\w*",
                     r"transf[èe]re\w*", r"reenv[íi]a\w*", r"inoltra\w*", r"encaminh\w*", "stuur")

_AI = (r"(?:ai|a\.i\.|assistant|llm|model|chatbot|bot|gpt|chatgpt|ki|ki-?assistent\w*|assistent\w*|assistant ia|ia|"
       r"asistente(?: de ia)?|assistente(?: ia| de ia)?|ai-?assistent|grading ai|ai (?:assistant|model|screening "
       r"tools?|assistant drafting replies)s?|language model)")

_FEATURE_PATTERNS: tuple[tuple[str, float, str], ...] = (
    # an override verb aimed at the instructions: "ignore all previous instructions", "vergiss deine Regeln"
    ("override", 3.0, rf"\b{_OVERRIDE}\b(?:{_GAP}|{_DOTTED_GAP}){_RULES}"
                      r"|even if it conflicts with (?:your|the) (?:rules|instructions|guidelines)"),
    # "the previous instructions no longer apply / are void"
    ("void", 2.0, rf"\b{_RULES}[^.!?\n]{{0,60}}?\b{_VOID}"),
    ("new_rules", 1.5, r"\b(?:new|updated|neue|nouvelles?|nueva|nuevas|nuova|nova|nieuwe) (?:priority )?"
                       r"(?:instruc\w*|rules?|anweisung\w*|regeln|consignes?|règles|instrucci\w*|reglas|istruzion\w*|"
                       r"policy|orders)"
                       r"|supersedes?|höchste[rn]? priorität|priority (?:level|instruction)|consigne prioritaire|"
                       r"instrucción prioritaria|your (?:only|new|real) (?:goal|task) (?:now )?is"),
    # a persona without rules: DAN, developer mode, "an AI without restrictions"
    ("persona", 1.5, r"\b(?:you are now|you're now|you are going to act|from now on,? you|for the rest of this "
                     r"(?:conversation|chat),? you|du bist (?:jetzt|ab jetzt|nun|kein)|ab (?:jetzt|sofort) bist du|"
                     r"tu es (?:maintenant|désormais)|à partir de maintenant,? tu|ahora (?:eres|estás)|a partir de "
                     r"ahora,? eres|da adesso sei|a partir de agora,? (?:você|voce) é|je bent nu|od teraz jesteś|"
                     r"act as|acting as|pretend|imagine you(?:'re| are)|roleplay as|role-?play as|play the role|"
                     r"tu so,? als|spiel die rolle|fais comme si|joue le rôle|finge que|interpreta el papel|"
                     r"fai finta|finja que|doe alsof|(?:deceased|late|dead|verstorbene\w*|défunte) "
                     r"(?:grand\w*|großmutter|oma)|you have been freed)"),
    ("no_limits", 3.0, r"\b(?:no|without(?: any)?|free of|freed from|broken free of|not bound by|no longer bound by)"
                       r" (?:\w+ ){0,2}(?:restrictions?|rules|limits|limitations|filters?|censorship|guidelines|"
                       r"content polic\w*|safety guidelines|ethical|moral|refusal)"),
    ("no_limits", 3.0, r"\b(?:unrestricted|unfiltered|uncensored|unrestr\w+|do anything now|jailbr\w* (?:mode|"
                       r"active|enabled)|(?:enable|activate)\w* jailbr\w*|never refuses?|always answers|no matter how "
                       r"dangerous|refusals?: disabled|(?:rules|regeln|règles|reglas|regole|regras) (?:disabled|"
                       r"deaktiviert|désactivées|desactivadas|disattivate|desativadas)|no refusal|root privileges)"),
    ("no_limits", 3.0, r"\b(?:ohne|sans|sin|senza|sem|zonder|bez) (?:\w+ ){0,2}(?:einschränkung\w*|regeln|zensur|"
                       r"filter|grenzen|restrictions?|règles?|censure|filtres?|limites?|restricci\w*|reglas|censura|"
                       r"filtros?|límites?|regole|filtri|restriç\w*|regras|regels|zasad|sicherheitsregeln)"
                       r"|\b(?:keine?|aucune?|ningun[ao]?|nessun[ao]?|nenhum[ao]?|geen|żadnych|nie obowiązują) "
                       r"(?:\w+ ){0,2}(?:regeln|inhaltsrichtlinien|einschränkung\w*|règles?|politique|regla|reglas|"
                       r"políticas?|regole|regras|regels|zasad\w*|limite|filtro|filtri|filters)"),
    ("no_limits", 3.0, r"lehnst nichts ab|ne refuses jamais|nunca rechazas|non rifiuti mai|weiger\w* nooit|"
                       r"n'es plus li[ée]|ya no estás sujet[oa]|nicht mehr (?:an \w+ \w+ )?gebunden|"
                       r"non sei più vincolat|não está mais sujeit|no longer bound|free from the restrictions"),
    ("dan", 3.0, r"\b(?:as|is|are|am|eres|bist du|sei|é o|tu es|you are) (?:now )?(?:dan|stan|aim|evilbot|omega)\b|"
                 r"\bdan\b[^.\n]{0,40}(?:do anything|stands for|broken free)|stay in character|bleib\w* (?:immer )?"
                 r"in (?:dieser|der) rolle|reste dans ce rôle|mantente\w* (?:siempre )?en el personaje"),
    ("dev_mode", 2.0, r"\b(?:developer|dev|sudo|god|admin|maintenance|debug|jailbreak) mode (?:enabled|activated|on)\b|"
                      r"\bmode: unrestricted|\bsudo mode"),
    ("dev_mode.in", 2.0, r"\b(?:you are|you're|now|are now|enabled?|activated?|entering|is)\b[^.\n]{0,12}"
                         r"\b(?:in )?(?:developer|dev|sudo|god|admin|maintenance|debug|jailbreak) mode\b"),
    ("dev_mode.intl", 2.0, r"\b(?:bist|sind) (?:jetzt |nun )?im entwicklermodus|\bes (?:maintenant )?en mode "
                           r"d[ée]veloppeur|est[áa]s en modo desarrollador|\bin modalità sviluppatore|"
                           r"\bin ontwikkelaarsmodus|\bw trybie deweloperskim"),
    # asking for the hidden prompt, secrets or data
    ("extract", 3.0, rf"\b{_EXTRACT_VERBS}\w*\b{_GAP}{_SECRETS}"),
    ("extract_weak", 1.5, r"\b(?:system ?prompt|systemprompt|prompt (?:système|del sistema|di sistema|do sistema)|"
                          r"systeemprompt|hidden (?:rules|instructions|prompt)|secret instructions|geheimen "
                          r"anweisungen|instructions secrètes|instrucciones secretas|confidential|vertraulich\w*|"
                          r"confidentiel\w*|confidencial\w*|internal (?:pricing|roadmap|documents|data|api)|"
                          r"passwords? stored|stored (?:passwords|credentials)|gespeicherten zugangsdaten|"
                          r"identifiants enregistrés|credenciales guardadas|what (?:the|your) developer (?:wrote|said|"
                          r"told you)|(?:activation|licen[cs]e|product) keys|secret word)"),
    ("verbatim", 1.5, r"\b(?:verbatim|word for word|word-for-word|wortwörtlich|wort für wort|mot pour mot|palabra por "
                      r"palabra|parola per parola|palavra por palavra|woord voor woord|quote it exactly|exact text|"
                      r"in full\b|don'?t paraphrase|one letter at a time)"),
    ("privilege", 1.5, r"\b(?:grant|give|accorde|concede|gib|conceda|dai)\w*\b[^.\n]{0,40}"
                       r"\b(?:admin\w* (?:rights|access|"
                       r"privileges)|droits d'administrat\w*|permisos de administrador|adminrechte|admin-?rechte|"
                       r"root)|full (?:access|clearance)|with full clearance|administrator with"),
    # spoofed conversation markup
    ("markup", 2.5, r"(?:^|\n)[ \t]*(?:#{1,4} ?(?:system|système|systeme|sistema|admin|assistant)\b ?:?[ \t]*(?:\n|:)|"
                    r"\[?(?:system|système|systeme|sistema|admin)\]? ?:|assistant: sure)"),
    ("markup.token", 2.5, rf"{_MARKUP_TOKENS}"),
    ("end_marker", 1.5, r"end of (?:the )?user (?:input|message)|user input ends here|ende der benutzereingabe|"
                        r"fin de la saisie|fin de la entrada|-{2,} ?end\b"),
    # text addressed to the model inside a document, an e-mail, a page or a tool result
    ("addressed", 2.5, rf"\b{_NOTE_WORDS} (?:to|for|an|pour|para|per|voor|à) (?:the |den |die |l'|el |la |o |de |all )?"
                       rf"{_AI}s?\b"),
    ("addressed.reading", 2.5, rf"\b{_AI}s? (?:is |are )?(?:reading|processing|handling|drafting|summari[sz]ing|"
                               rf"screening)\b|\bif (?:you are|you're) an? {_AI}\b|when (?:you (?:summari[sz]e|read|"
                               r"process)|summari[sz]ing|asked about) this"),
    ("addressed.label", 2.5, rf"(?<![\w-]){_LABELS} ?: |@ai-?bot|\bto the ai\b|\bai, |\bassistant, (?:stop|forget|"
                             r"ignore)"),
    ("hidden_text", 1.5, r"display: ?none|visibility: ?hidden|font-size: ?0|color: ?white|white text|<!--|\(hidden\)|"
                         r"hidden text"),
    ("conceal", 1.5, r"\b(?:don'?t|do not|never|without) (?:tell|telling|inform\w*|mention\w*|let) (?:the )?user|"
                     r"\bsilently\b|\bnever mention|\bdarfst dem nutzer nichts|sans en parler à l'utilisateur|"
                     r"sin contárselo al usuario|ohne es dem nutzer|don'?t tell the user"),
    ("exfiltrate", 2.0, rf"\b{_SEND_WORDS}\b[^\n]{{0,80}}?(?:\b[\w.+-]+@[\w-]+\.[\w.]+|https?://)"),
    ("exfiltrate.image", 2.0, r"!\[[^\]\n]{0,40}\]\(https?://[^)\s]{0,200}[?&][\w]+="),
    ("exfiltrate.other", 2.0, r"\bappend (?:the )?user'?s?[^.\n]{0,30}to every"
                              r"|\bcurl [^|\n]{0,100}\|\s*(?:sudo )?(?:ba)?sh"
                              r"|\bchange the bank details|\bemail (?:their|your) password"),
    ("exfiltrate.login", 2.0, r"\b(?:log ?in|sign in|anmelden|connecter|iniciar sesión)[^.\n]{0,40}\b[\w-]+\."
                              r"(?:example\.)?(?:com|net|org|de|fr|es)\b"),
    ("exfiltrate.fetch", 2.0, r"\b(?:open|visit|fetch|browse to) https?://[^\s]{1,200}[^.\n]{0,40}(?:follow|obey|do) "
                              r"(?:whatever|what) it says"),
    ("exfil_target", 1.5, r"\b(?:(?:full|entire|whole|our) (?:chat|conversation)(?: history| log)?|chat history|"
                          r"conversation history|all (?:previous|prior|other) (?:messages|tickets|events)|(?:last|"
                          r"previous) \w* ?(?:emails|messages)|all (?:of )?the user'?s (?:emails|messages|data|other)|"
                          r"tous les e-?mails|todos los correos|alle e-?mails|tutte le email|todos os e-?mails|"
                          r"alle e-?mails)"),
    ("output_inject", 1.5, r"\b(?:append|add|include|insert)\w* (?:the following|this|a link|this link)[^.\n]{0,40}"
                           r"\b(?:its|your|every|each|the) (?:answer|response|reply|summary)|\bin every answer\b|"
                           r"recommend (?:the )?(?:competitor|competition|produit concurrent|producto de la)|"
                           r"produit concurrent|konkurrenzprodukt|producto de la competencia|visit https?://"),
    ("tool_abuse", 1.5, r"\b(?:delete|remove|close|approve|merge|cancel|wipe|rank)\w* (?:all|every|and merge|any "
                        r"applicant|the user'?s)|\bmark them as resolved|call the \w+ tool"),
    ("doc_task", 1.0, r"\b(?:summari[sz]e|summary of|gist|résume|resume|fasse|riassumi|resuma|vat\b[^.\n]{0,30}"
                      r"samen|classify|clasifica|classe|analy[sz]e|analyse|analysiere|review this|translate this|"
                      r"what does this|bewerte|proofread|grade|check the grammar|read this readme|extract)\b"),
    ("authority", 2.0, r"\b(?:i'?m|i am) (?:the|your) (?:developer|engineer|admin|administrator|creator|operator)|"
                       r"\bi'?m the developer now|\bich bin (?:jetzt )?dein (?:administrator|admin|entwickler)|"
                       r"\bc'est moi l'administrateur|\byo soy el administrador|\bauthori[sz]ed by (?:your )?"
                       r"(?:administrator|admin|developer)|\b(?:user|benutzer|utilisateur|usuario) (?:is|ist|est|es) "
                       r"(?:an )?(?:administrator|administrateur|administrador)"),
    ("authority.support", 2.0, r"\bthis is (?:openai|anthropic|google) support|\bcompliance audit|\bsupport technique|"
                               r"\bequipo de soporte|\bmaintenance mode|\brestrictions (?:are|sont|quedan) suspend|"
                               r"\brestrictions? (?:temporarily )?(?:lifted|suspended)|\brules are temporarily"),
    ("comply", 1.0, r"\b(?:you must (?:comply|answer|obey)|comply with everything|obey (?:the user|me)|"
                    r"without question|"
                    r"confirm (?:by|with) (?:replying )?['\"]|no matter what|du musst mir jetzt|tu dois maintenant|"
                    r"ahora debes|await new orders|confirme en répondant|confírmalo respondiendo|bestätige mit|"
                    r"answer (?:everything|freely|all questions)|répond(?:s)? à tout|responde a todo|"
                    r"beantworte alle|respond to every request|the user is always right)"),
    ("decode_follow", 2.5, r"\b(?:decode|dekodiere|décode|decodifica|read|lies|lis|lee|translate|respond to|take)\b"
                           r"[^.\n]{0,40}(?:base ?6[4a]|rot-?(?:13|ie)|hex|reverse|first letter)[^\n]{0,60}?"
                           r"\b(?:follow|"
                           r"do what it says|obey|execute|führe|ausführen|exécute|ejecuta|sigue|do that)"
                           r"|(?:hex string|reverse)[^.\n]{0,60}(?:obey|follow)"),
    ("reversed", 3.0, r"erongi|snoitcurtsni|tpmorp metsys|suoiverp"),
)

_NEGATIVE_PATTERNS: tuple[tuple[str, float, str], ...] = (
    # talking about attacks: security articles, filters, tests, classifiers
    ("meta", -2.5, r"\b(?:prompt[- ]injection|injection de prompt|inyección de prompt|injeção de prompt|"
                   r"jailbreak (?:techniques|attacks|angriffen?|attaques)|ataques de jailbreak|attaques de "
                   r"jailbreak|jailbreak-?angriffen|unit tests?|classifier|moderation pipeline|regex that detects|"
                   r"(?:filter|filtre|filtro)\w*,? (?:that|which|der|qui|que) (?:detects|erkennt|repère|detecte)|"
                   r"phrases? like|sätze wie|phrases comme|frases como|for (?:my|an|a) (?:article|blog post|slides|"
                   r"security training)|grandma exploit|fachartikel|article sur|artículo sobre|"
                   r"researchers?|refuses to reveal)"),
    # a phone or a browser has a developer mode too
    ("device", -2.0, r"\b(?:android|iphone|samsung|pixel|chrome|handy|telefon|téléphone|telefono|móvil|movil|"
                     r"telemóvel|telemovel|smartphone|devtools)\b"),
)


# The words (their first four letters, as the view spells them) without which a pattern can not match:
# a pattern runs only if the text has a word from each group. Most texts that pass the gate have one
# or two candidate patterns, not twenty; a pattern costs ~5-25 µs, a set test ~0.1 µs.
_RULE_WORDS = (
    "instructions instruktion instruções instrucoes istruzioni anweisungen richtlinien vorgaben befehle consignes "
    "directives directions directrices indicaciones guidelines guidance rules regeln règles regles reglas regole "
    "regras normas zasady prompts system systemprompt programming constraints restrictions policy policies "
    "guardrails safety everything all anything whatever what above cidessus task tâche tarea aufgabe compito tarefa "
    "taak summary zusammenfassung résumé resumen riassunto resumo samenvatting proofreading rubric criteria alles "
    "tout todo tutto tudo wszystkie"
)
_TRIGGERS: dict[str, tuple[str, ...]] = {
    "override": (
        (
            "ignore ignoriere ignorier ignorieren ignorez ignora ignorar ignoruj disregard forget override bypass "
            "circumvent scrap aside discard skip follow following mind vergiss vergessen missachte übergehe oublie "
            "oubliez tiens abstraction olvida olvidar olvide omite descarta omiso dimentica esqueça esqueca esquecer "
            "desconsidere negeer vergeet zignoruj zapomnij conflicts"
        ),
        _RULE_WORDS,
    ),
    "void": (
        _RULE_WORDS,
        (
            "longer void invalid deleted cancelled canceled outdated lifted suspended test wrong nicht ungültig "
            "appliquent annulées aplican anuladas valgono aplicam gelten"
        ),
    ),
    "new_rules": (
        (
            "new updated neue nouvelle nouvelles nueva nuevas nuova nova nieuwe supersedes supersede höchster "
            "höchste priority prioritaire prioritaria only real"
        ),
    ),
    "persona": (
        (
            "now rest jetzt sofort nun kein maintenant désormais ahora adesso agora nu teraz act acting going "
            "pretend imagine roleplay role play rolle comme rôle finge papel finta finja alsof deceased late dead "
            "verstorbene défunte freed als"
        ),
    ),
    "no_limits": (
        (
            "no without free freed broken bound unrestricted unfiltered uncensored anything jailbreak enable enabled "
            "activate never always matter refusals refusal rules regeln règles reglas regole regras root ohne sans "
            "sin senza sem zonder bez keine kein aucune aucun ninguna ninguno ningún nessuna nessun nenhuma nenhum "
            "geen żadnych nie lehnst refuses rechazas rifiuti weiger weigert n'es estás nicht più mais longer"
        ),
    ),
    "dan": (
        (
            "dan stan aim evilbot omega stay bleib bleibe reste mantente mantenerte"
        ),
    ),
    "dev_mode": (
        (
            "mode"
        ),
    ),
    "dev_mode.in": (
        (
            "mode"
        ),
        (
            "you you're now are enabled enable activated activate entering is"
        ),
    ),
    "dev_mode.intl": (
        (
            "entwicklermodus mode modo modalità ontwikkelaarsmodus trybie"
        ),
    ),
    "extract": (
        (
            "reveal show print output repeat display tell give dump paste recite spell translate summarize summarise "
            "list quote copy write leak share complete finish what zeig zeige gib verrate verrat verrät wiederhole "
            "nenn nenne übersetze drucke wie montre affiche révèle revele répète repete recopie donne dismoi traduis "
            "imprime quel muestra muéstrame revela repite copia cópialo dime dame traduce enseña enséñame cuál cual "
            "mostra mostre riporta riportalo rivela qual herhaal toon geef wat podaj"
        ),
        (
            "system systemprompt systemanweisungen systemnachricht prompt message mensaje systeemprompt initial "
            "original hidden secret first full exact real preprompt pre your instructions text words everything "
            "lines context developer ursprünglichen versteckten geheimen deine règles instrucciones reglas "
            "istruzioni instruções admin administrator mot contraseña password senha beheerderswachtwoord hasło "
            "environment umgebungsvariablen etc api before activation license licence product jeton token "
            "zugangsdaten credentials identifiants credenciales"
        ),
    ),
    "extract_weak": (
        (
            "system systemprompt prompt systeemprompt hidden secret geheimen instructions instrucciones confidential "
            "vertraulich vertraulichen confidentiel confidentielles confidencial confidenciales internal passwords "
            "password stored gespeicherten identifiants credenciales developer activation license licence product"
        ),
    ),
    "verbatim": (
        (
            "verbatim word wortwörtlich wort mot palabra parola palavra woord quote exact full don't dont paraphrase "
            "letter"
        ),
    ),
    "privilege": (
        (
            "grant give accorde concede gib conceda dai full administrator"
        ),
    ),
    "markup": (
        (
            "# ## ### #### system système systeme sistema admin assistant"
        ),
    ),
    "markup.token": (
        (
            "imstart imend system inst sys user admin assistant role"
        ),
    ),
    "end_marker": (
        (
            "end ende fin user input"
        ),
    ),
    "addressed": (
        (
            "note message instruction instructions attention hinweis anweisung nota instrucción important wichtig "
            "importante opmerking ps p"
        ),
        (
            "ai ki ia llm assistant assistent assistenten asistente assistente chatgpt gpt bot model chatbot "
            "language kiassistenten aiassistent grading"
        ),
    ),
    "addressed.reading": (
        (
            "reading processing handling drafting summarizing summarising screening if when"
        ),
        (
            "ai ki ia llm assistant assistent asistente assistente chatgpt gpt bot model chatbot language summarize "
            "summarise read process asked this"
        ),
    ),
    "addressed.label": (
        (
            "ai ki ia assistant chatgpt model aibot @aibot to"
        ),
    ),
    "hidden_text": (
        (
            "display visibility font color white -- hidden"
        ),
    ),
    "conceal": (
        (
            "tell telling inform informing mention mentioning let silently never darfst parler contárselo ohne"
        ),
    ),
    "exfiltrate": (
        (
            "forward send email transfer upload post weiterleiten leite leitest transfère transfere reenvía reenvia "
            "inoltra encaminhe stuur"
        ),
        (
            "http https @"
        ),
    ),
    "exfiltrate.image": (
        (
            "http https"
        ),
    ),
    "exfiltrate.other": (
        (
            "append curl change email"
        ),
    ),
    "exfiltrate.login": (
        (
            "log login sign anmelden connecter iniciar"
        ),
    ),
    "exfiltrate.fetch": (
        (
            "open visit fetch browse"
        ),
    ),
    "exfil_target": (
        (
            "full entire whole our chat conversation all last previous tous todos alle tutte"
        ),
    ),
    "output_inject": (
        (
            "append add include insert every recommend produit konkurrenzprodukt producto visit"
        ),
    ),
    "tool_abuse": (
        (
            "delete remove close approve merge cancel wipe rank mark call"
        ),
    ),
    "doc_task": (
        (
            "summarize summarise summary gist résume resume fasse riassumi resuma vat classify clasifica classe "
            "analyze analyse analysiere review translate what bewerte proofread grade check read extract"
        ),
    ),
    "authority": (
        (
            "developer engineer admin administrator administrateur administrador creator operator entwickler "
            "authorized authorised"
        ),
    ),
    "authority.support": (
        (
            "support soporte compliance maintenance restrictions restriction rules"
        ),
    ),
    "comply": (
        (
            "must comply obey without confirm matter musst dois debes await confirme confírmalo bestätige answer "
            "répond réponds responde beantworte respond user"
        ),
    ),
    "decode_follow": (
        (
            "decode dekodiere décode decodifica read lies lis lee translate respond take hex reverse"
        ),
    ),
    "reversed": (
        (
            "erongi snoitcurtsni tpmorp suoiverp"
        ),
    ),
    "meta": (
        (
            "prompt injection jailbreak ataques attaques unit classifier moderation regex filter filtre filtro "
            "phrases phrase sätze frases article blog slides security grandma fachartikel artículo researchers "
            "researcher refuses"
        ),
    ),
    "device": (
        (
            "android iphone samsung pixel chrome handy telefon téléphone telefono móvil movil telemóvel telemovel "
            "smartphone devtools"
        ),
    ),
}


@dataclass(frozen=True)
class Signal:
    name: str
    weight: float
    pattern: re.Pattern[str]
    needs: tuple[frozenset[str], ...]  # a word from each

    def search(self, view: str) -> re.Match[str] | None:
        if "gap" not in self.pattern.groupindex:
            return self.pattern.search(view)
        for m in self.pattern.finditer(view):
            gap = m.group("gap")
            if not gap or _THEIRS.search(gap) is None:
                return m
        return None


def _signal(name: str, weight: float, pattern: str) -> Signal:
    """``name.part``: a part of signal ``name`` with its own trigger words (a signal counts once)."""
    needs = tuple(frozenset(word[:4] for word in group.split()) for group in _TRIGGERS[name])
    return Signal(name.split(".")[0], weight, re.compile(pattern), needs)


FEATURES = tuple(_signal(*f) for f in _FEATURE_PATTERNS)
NEGATIVES = tuple(_signal(*f) for f in _NEGATIVE_PATTERNS)
