"""The processes: ``stack up``, ``demo``, ``sim``, ``sim-data`` and ``api``."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import httpx
import typer
import uvicorn

from coachview_sim.app import create_app as create_sim
from coachview_sim.store import Seed
from gradesync import simdata
from gradesync.cli import common
from gradesync.cli.common import err, out
from gradesync.demo import run
from gradesync.settings import ConfigurationError, get_settings
from gradesync.stack import up
from producers.api import create_app


def api(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
) -> None:
    """Run the HTTP ingress for LMS webhooks."""

    try:
        ingress = create_app(None, common.send)
    except ConfigurationError as exc:
        err.print(f"gradesync api refuses to start: {exc}", soft_wrap=True)
        raise typer.Exit(2) from exc
    trusted = get_settings().trusted_proxies
    # X-Forwarded-For only from the proxies named: uvicorn otherwise believes any local caller,
    # and the console's per-address login limit would count whatever address it was told.
    uvicorn.run(
        ingress,
        host=host,
        port=port,
        log_level="warning",
        proxy_headers=bool(trusted),
        forwarded_allow_ips=trusted or None,
    )


stack_app = typer.Typer(help="The whole system on this machine, without Docker.")


@stack_app.command("up")
def stack_up(
    api_port: Annotated[int, typer.Option(help="Another free one if taken")] = 8000,
    sim_port: Annotated[int, typer.Option(help="Another free one if taken")] = 8100,
    flower_port: Annotated[int, typer.Option(help="Another free one if taken")] = 5555,
    redis_port: Annotated[int, typer.Option(help="Another free one if taken")] = 6379,
    fresh: Annotated[
        bool, typer.Option("--fresh", help="Start with an empty ledger (removes .local/redis)")
    ] = False,
) -> None:
    """Start redis-server, the simulator (demo data), api, worker, beat and Flower; write
    .local/stack.env for the gradesync commands of other terminals."""

    wanted = {"redis": redis_port, "sim": sim_port, "api": api_port, "flower": flower_port}
    up(Path.cwd(), wanted, fresh, out)


def demo(
    api_url: Annotated[
        str, typer.Option(envvar="GRADESYNC_API_URL", help="The ingress (the stack's)")
    ] = "http://127.0.0.1:8000",
    sim_url: Annotated[
        str | None, typer.Option(help="The simulator (default: COACHVIEW_BASE_URL)")
    ] = None,
) -> None:
    """Push sample completions from every LMS through a running stack; show what happened."""

    settings = get_settings()
    url = sim_url or settings.coachview_base_url
    raise typer.Exit(run(api_url, url, common.ledger(), settings, out))


sim_data_app = typer.Typer(
    help="Fix the simulator's data as you would Coachview's (the stack's simulator: "
    "COACHVIEW_BASE_URL)."
)


def _sim_change(build: Callable[[simdata.Data], simdata.Data]) -> None:
    url = get_settings().coachview_base_url
    try:
        fragment = build(simdata.fetch(url))
        simdata.send(url, fragment)
    except simdata.SimDataError as exc:
        err.print(str(exc))
        raise typer.Exit(1) from exc
    except httpx.HTTPError as exc:
        err.print(f"no simulator answered at {url} ({type(exc).__name__}): is the stack up?")
        raise typer.Exit(2) from exc
    out.print(f"done: {json.dumps(fragment, ensure_ascii=False)}")


@sim_data_app.command("show")
def sim_data_show() -> None:
    """Persons, trainings with their components' e-learning codes, and enrolments."""
    url = get_settings().coachview_base_url
    try:
        data = simdata.fetch(url)
    except httpx.HTTPError as exc:
        err.print(f"no simulator answered at {url} ({type(exc).__name__}): is the stack up?")
        raise typer.Exit(2) from exc
    for line in simdata.describe(data):
        out.print(line)


@sim_data_app.command("person")
def sim_data_person(
    extern_id: Annotated[str, typer.Argument(help="The LMS person id (Coachview: extern id)")],
    first_name: Annotated[str, typer.Option()] = "",
    last_name: Annotated[str, typer.Option()] = "",
) -> None:
    """Add a person whose external id is the LMS person id."""
    _sim_change(lambda data: simdata.add_person(data, extern_id, first_name, last_name))


@sim_data_app.command("enrol")
def sim_data_enrol(
    extern_id: Annotated[str, typer.Argument(help="The person's external id (LMS person id)")],
    training: Annotated[int, typer.Argument(help="The training's id (sim-data show)")],
) -> None:
    """Enrol a person on a training (on each of its components)."""
    _sim_change(lambda data: simdata.enrol(data, extern_id, training))


@sim_data_app.command("course")
def sim_data_course(
    component: Annotated[int, typer.Argument(help="The component's id (sim-data show)")],
    course_id: Annotated[str, typer.Argument(help="The LMS course id (its e-learning code)")],
) -> None:
    """Put the LMS course id on a training's e-learning component."""
    _sim_change(lambda data: simdata.set_course(data, component, course_id))


def sim(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8100,
    seed: Annotated[
        Path | None, typer.Option(help="A /_sim/seed JSON file to load at start")
    ] = None,
) -> None:
    """Run the Coachview simulator."""

    application = create_sim()
    if seed is not None:
        application.state.sim.store.seed(Seed.model_validate_json(seed.read_text()))
    uvicorn.run(application, host=host, port=port, log_level="warning")
