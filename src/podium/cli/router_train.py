"""``podium router train``: fit a learned router on an eval dataset and write the file that
``routing.router: learned`` loads, printing the same kind's cross-fitted metrics on that data first."""

from __future__ import annotations

import typer

from podium.errors import ConfigError


def run_router_train(dataset: str, *, kind: str, knob: float, out: str, folds: int = 5, seed: int = 0) -> None:
    from podium.evaluation.dataset import load_dataset
    from podium.routing.learned.files import save_router
    from podium.routing.learned.training import KINDS, train_router
    from podium.safe_files import check_writable_target

    if kind not in KINDS:
        raise ConfigError(f"unknown --kind {kind!r}; choose one of {', '.join(KINDS)}")
    if not 0 <= knob <= 1:
        raise ConfigError(f"--knob must lie in [0, 1] (0 cheapest, 1 best), got {knob}")
    if folds < 2:
        raise ConfigError(f"--folds must be at least 2, got {folds}")
    check_writable_target(out, "router file")  # before training: --out /dev/null is refused, not replaced
    data = load_dataset(dataset)
    router = train_router(data, kind, knob, folds=folds, seed=seed)
    m = router.info["metrics"]
    at = m["at_knob"]
    shares = ", ".join(f"{name} {share:.1f} %" for name, share in at["shares"].items())
    typer.echo(f"{kind} router on {data.name} ({len(data):,} prompts, models {', '.join(router.models)})")
    typer.echo(f"held out ({m['folds']}-fold cross-fitted, {m['strong']} vs {m['weak']}): APGR {m['apgr']:.3f}, "
               f"CPT(20%) {m['cpt20']:.1f} %, CPT(50%) {m['cpt50']:.1f} %, CPT(80%) {m['cpt80']:.1f} %")
    typer.echo(f"at knob {knob:g}: accuracy {at['accuracy']:.2f} %, ${at['cost_per_prompt']:.6f} per prompt; "
               f"picks {shares}")
    typer.echo("held out at other knobs (the file's knob is a default; routing.learned.knob overrides it):")
    for row in m["knobs"]:
        picks = ", ".join(f"{share:.0f} %" for share in row["shares"].values())
        typer.echo(f"  knob {row['knob']:<5g} accuracy {row['accuracy']:6.2f} %  ${row['cost_per_prompt']:.6f}/prompt  "
                   f"picks {picks}")
    path = save_router(router, out)
    typer.echo(f"wrote {path}")
