"""Command-line tools: flask users …, tokens …, demo seed, runs import/export/reprice/backfill-artifacts/prune/reap."""

from __future__ import annotations

import io
import os
import sys
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import IO, Any, BinaryIO, TextIO

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from . import accounts, backfill, deleting, importing, queries, reaping, recording, repricing, schemas, tokens
from .artifacts import exports
from .demo import DEMO_EMAIL, DEMO_PASSWORD, DEMO_RUN_COUNT, demo_runs
from .extensions import db
from .filters import ListFilters
from .models import User
from .progress import counted, progress
from .statuses import RunStatus

users_cli = AppGroup("users", help="Manage user accounts.")
demo_cli = AppGroup("demo", help="Demo data for trying Artifacts locally.")
tokens_cli = AppGroup("tokens", help="Manage API tokens.")
runs_cli = AppGroup(
    "runs", help="Import and export runs as JSON Lines, reprice them, bring legacy runs up to date, prune old ones, "
         "fail abandoned ones.")


def read_password(password_stdin: bool) -> str:
    """A password from stdin (for scripts) or from a confirmed, hidden prompt."""
    if password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


def existing_user(email: str) -> User:
    """The user with that email, or a clear CLI error."""
    user = queries.user_by_email(email)
    if user is None:
        raise click.ClickException(f"No user with email {email}")
    return user


@users_cli.command("create")
@click.argument("email")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def create_user_command(email: str, password_stdin: bool) -> None:
    """Create a user; the password is prompted for (or read from stdin)."""
    password = read_password(password_stdin)
    try:
        user = accounts.create_user(email, password)
    except accounts.AccountError as error:
        db.session.rollback()
        raise click.ClickException(str(error)) from None
    db.session.commit()
    click.echo(f"Created user {user.email}")


@users_cli.command("set-password")
@click.argument("email")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.option("--keep-tokens", is_flag=True, help="Leave the user's API tokens working.")
def set_password_command(email: str, password_stdin: bool, keep_tokens: bool) -> None:
    """Change a user's password; every session they had ends, and their API tokens are revoked."""
    user = existing_user(email)
    try:
        revoked = accounts.set_password(user, read_password(password_stdin), keep_tokens=keep_tokens)
    except accounts.AccountError as error:
        db.session.rollback()
        raise click.ClickException(str(error)) from None
    db.session.commit()
    click.echo(f"Password changed for {user.email}; their sessions have ended.")
    click.echo("API tokens kept." if keep_tokens else f"{revoked} API token{'s' if revoked != 1 else ''} revoked.")


@tokens_cli.command("create")
@click.argument("email")
@click.option("--name", required=True, help="What the token is for, e.g. the pipeline host.")
def create_token_command(email: str, name: str) -> None:
    """Create an API token; it is printed once, alone on the last line."""
    user = existing_user(email)
    try:
        token, clear = tokens.create_token(user, name)
    except tokens.TokenError as error:
        db.session.rollback()
        raise click.ClickException(str(error)) from None
    db.session.commit()
    click.echo(f"Created token {token.name!r} ({token.prefix}…) for {user.email}. It is shown once:")
    click.echo(clear)


@demo_cli.command("seed")
def seed_command() -> None:
    """Create the demo user and about 200 varied runs; does nothing if they are already there."""
    user = queries.user_by_email(DEMO_EMAIL)
    if user is None:
        user = accounts.create_user(DEMO_EMAIL, DEMO_PASSWORD)
    existing = queries.run_count(user)
    if existing:
        db.session.commit()
        click.echo(f"Demo data already present ({existing} runs). Log in as {DEMO_EMAIL} / {DEMO_PASSWORD}")
        return
    with progress("Seeding demo runs", DEMO_RUN_COUNT) as advance:
        for run in demo_runs():
            if run.legacy:
                assert run.created_at is not None and run.completed_at is not None  # demo_runs dates every run
                recording.record_legacy_run(
                    user, pipeline=run.pipeline, input=run.input, final_output=run.final_output,
                    created_at=run.created_at, completed_at=run.completed_at,
                )
            elif run.status == RunStatus.RUNNING.value:
                started = recording.start_run(user, schemas.parse(schemas.RunStart, {
                    "pipeline": run.pipeline, "input": run.input, "variables": run.variables, "model": run.model,
                    "tags": run.tags, "metadata": run.metadata,
                    "createdAt": run.created_at.isoformat() if run.created_at else None,
                }))
                for step in run.steps:
                    recording.add_step(user, started.id, schemas.parse(schemas.StepIn, step))
            else:
                recording.record_from_values(
                    user, pipeline=run.pipeline, input=run.input, status=run.status,
                    variables=run.variables, model=run.model, steps=run.steps,
                    final_output=run.final_output, usage=run.usage, error=run.error,
                    created_at=run.created_at, completed_at=run.completed_at,
                    tags=run.tags or None, metadata=run.metadata,
                )
            advance(1)
    db.session.commit()
    click.echo(f"Seeded {counted(DEMO_RUN_COUNT, 'run')}. Log in as {DEMO_EMAIL} / {DEMO_PASSWORD}")


@runs_cli.command("import")
@click.argument("source", type=click.File("rb"))
@click.option("--user", "email", required=True, help="The user the runs belong to.")
@click.option("--allow-incomplete", is_flag=True,
              help="Import the runs of a file that is not one whole export (no summary line at its end, a count "
                   "that disagrees, lines after it): a file written by hand or by a version before summary lines.")
def import_command(source: BinaryIO, email: str, allow_incomplete: bool) -> None:
    """Import runs from a JSON Lines export (one API-shaped run per line, then its summary line); bad
    lines are reported. All or nothing: one transaction, committed only once the whole file was read
    and its summary line agrees, so an export that was cut off imports nothing, and can be imported
    again once exported whole."""
    user = existing_user(email)
    with progress("Importing runs", file_size(source)) as advance:
        read = importing.import_lines(user, source, advance)
    incomplete = read.incomplete()
    if incomplete and not allow_incomplete:
        db.session.rollback()
        raise click.ClickException(
            f"{display_name(source)} is incomplete: {incomplete}. Nothing was imported (the "
            f"{counted(read.stored, 'good run')} read were discarded). Export it again, or pass --allow-incomplete "
            "to import the runs it holds.")
    db.session.commit()
    click.echo(f"Imported {counted(read.stored, 'run')} for {user.email}.")
    if incomplete:
        click.echo(f"Warning: {display_name(source)} is incomplete: {incomplete}.", err=True)
    if read.rejected:
        click.echo(f"Rejected {counted(len(read.rejected), 'line')}:", err=True)
        for number, reason in read.rejected:
            click.echo(f"  line {number}: {reason}", err=True)
        sys.exit(1)


def file_size(source: BinaryIO) -> int:
    """The size of a regular file in bytes (what the progress bar counts); 0 for a pipe."""
    try:
        return max(os.fstat(source.fileno()).st_size, 0)
    except (OSError, ValueError, io.UnsupportedOperation):
        return 0


def display_name(stream: IO[Any]) -> str:
    name = getattr(stream, "name", "-")
    return "standard input" if name in ("-", "<stdin>", 0) else str(name)


@runs_cli.command("export")
@click.option("--user", "email", required=True, help="Whose runs to export.")
@click.option("--output", type=click.File("w", encoding="utf-8"), default="-", help="A file (default: stdout).")
def export_command(email: str, output: TextIO) -> None:
    """Export every finished run of a user as JSON Lines, the format `runs import` reads: one run a
    line, then the summary line {"export": {"runs": N, "complete": true}}. What the command says at
    the end goes to stderr, so stdout carries only the export."""
    user = existing_user(email)
    filters = ListFilters(finished_only=True)
    lines = 0
    with progress("Exporting runs", queries.run_totals(user, filters).runs) as advance:
        for chunk in exports.jsonl_lines(user, filters):
            output.write(chunk)
            written = chunk.count("\n")  # one a line: JSON escapes the newlines inside its strings
            lines += written
            advance(written)
    output.flush()
    target = "standard output" if output.name in ("-", "<stdout>") else output.name
    click.echo(f"Exported {counted(lines - 1, 'run')} to {target}", err=True)


DAY = click.DateTime(formats=["%Y-%m-%d"])


@runs_cli.command("reprice", short_help="Recompute computed costs from the current price table.")
@click.option("--model", help="Only runs that used this model (the run's or a step's), matched by price family.")
@click.option("--since", type=DAY, help="Only runs completed on or after this day (UTC), YYYY-MM-DD.")
@click.option("--until", type=DAY, help="Only runs completed on or before this day (UTC), YYYY-MM-DD.")
@click.option("--dry-run", is_flag=True, help="Say what would change; write nothing.")
@click.option("--batch-size", type=click.IntRange(1, 10_000), default=repricing.BATCH, show_default=True,
              help="Runs per transaction.")
def reprice_command(
    model: str | None, since: datetime | None, until: datetime | None, dry_run: bool, batch_size: int
) -> None:
    """Recompute computed costs from the current price table (the packaged prices and PRICES_FILE), each
    run as of its completion, steps included; unpriced runs whose model now has a price get one.

    A cost a provider reported, the run's or a step's, is never touched, nor a step cost of unknown
    origin (stored before migration 0009, or imported). Prints per model how many runs change and
    their total cost before and after; a reprice that changes something is recorded (see the run's
    page). Runs are read in batches, one transaction each, the list's totals kept exact.
    """
    if since and until and since > until:
        raise click.BadParameter("must not be before --since", param_hint="--until")
    scope = repricing.Scope(model=model.strip() if model else None, completed_from=since.date() if since else None,
                            completed_to=until.date() if until else None)
    table = recording.price_table()
    prices_file = current_app.config["PRICES_FILE"]
    click.echo(f"Prices {table.fingerprint()[:12]} (the packaged table{f' + {prices_file}' if prices_file else ''}); "
               f"runs completed {scope_days(scope)}; {f'model {scope.model}' if scope.model else 'any model'}.")
    with progress("Repricing runs", repricing.candidate_count(scope)) as advance:
        report = repricing.reprice(scope, table, prices_file=prices_file, dry_run=dry_run, batch_size=batch_size,
                                   advance=advance)
    print_report(report, dry_run)


def scope_days(scope: repricing.Scope) -> str:
    start, end = scope.completed_from, scope.completed_to
    if start and end:
        return f"from {start} to {end}"
    return f"from {start}" if start else f"until {end}" if end else "any day"


def dollars(amount: Decimal) -> str:
    return f"${amount:,f}"


def print_report(report: repricing.Report, dry_run: bool) -> None:
    """The reprice per model, then what it did (or would do) in one line, and what it left alone."""
    rows = [(name, report.by_model[name]) for name in sorted(report.by_model)] + [("all", report.total)]
    width = max(len("model"), *(len(name) for name, _ in rows))
    money = max(len("before"), *(len(dollars(t.before)) for _, t in rows), *(len(dollars(t.after)) for _, t in rows))
    click.echo(f"{'model':<{width}}  {'runs':>7}  {'changed':>7}  {'unpriced':>9}  {'before':>{money}}  "
               f"{'after':>{money}}")
    for name, tally in rows:
        unpriced = f"{tally.unpriced_before}→{tally.unpriced_after}"
        click.echo(f"{name:<{width}}  {tally.runs:>7,}  {tally.changed:>7,}  {unpriced:>9}  "
                   f"{dollars(tally.before):>{money}}  {dollars(tally.after):>{money}}")
    changed, runs = report.total.changed, report.total.runs
    priced = f" ({counted(report.newly_priced, 'unpriced run')} priced)" if report.newly_priced else ""
    if dry_run:
        click.echo(f"Dry run: {changed:,} of {counted(runs, 'run')} would change{priced}; nothing was written.")
    elif report.reprice_id is None:
        click.echo(f"Nothing changed: the {counted(runs, 'run')} already cost what these prices say.")
    else:
        click.echo(f"Repriced {changed:,} of {counted(runs, 'run')}{priced}; recorded as reprice {report.reprice_id}.")
    if report.unknown_steps:
        click.echo(f"{counted(report.unknown_steps, 'run')} kept step costs of unknown origin "
                   "(stored before migration 0009, or imported).")
    if report.kept_without_price:
        click.echo(f"{counted(report.kept_without_price, 'run')} kept a computed cost whose model has no price now.")
    if report.refused:
        shown = ", ".join(report.refused[:10]) + (", …" if len(report.refused) > 10 else "")
        click.echo(f"{counted(len(report.refused), 'run')} left as they are: their usage does not add up to their "
                   f"steps' ({shown}).", err=True)


@runs_cli.command("backfill-artifacts", short_help="Give legacy runs the current artifact shape.")
@click.option("--dry-run", is_flag=True, help="Count the legacy runs; write nothing.")
@click.option("--batch-size", type=click.IntRange(1, 10_000), default=backfill.BATCH, show_default=True,
              help="Runs per transaction.")
def backfill_artifacts_command(dry_run: bool, batch_size: int) -> None:
    """Give legacy runs (stored before artifact storage: no artifact_data, only the text final_output)
    the current shape: artifact_data {"finalOutput": that text} and no steps, so every run reads the
    same way. In batches, one transaction each; idempotent (a second run changes nothing).

    This is the answer to the seed's open question (migrate existing runs, or leave them as-is?):
    migrate them, with this command rather than inside `flask db upgrade`. Migration 0002 added the new
    columns nullable, so legacy runs stay valid and readable meanwhile (the reader falls back to
    final_output); this rewrites them at the operator's pace, resumable. final_output is kept, as every
    completed run still writes it; dropping it is a later migration, once this has run everywhere.
    """
    with progress("Backfilling legacy runs", backfill.legacy_count()) as advance:
        changed = backfill.backfill(dry_run=dry_run, batch_size=batch_size, advance=advance)
    if dry_run:
        click.echo(f"Dry run: {counted(changed, 'legacy run')} would get an artifact document; nothing was written.")
    else:
        left = backfill.legacy_count()
        click.echo(f"Backfilled {counted(changed, 'legacy run')}; {counted(left, 'legacy run')} left.")


class Age(click.ParamType):
    """An age such as 90d, 12h or 2w (days, hours, weeks): how long ago."""

    name = "age"
    UNITS = {"h": "hours", "d": "days", "w": "weeks"}

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> timedelta:
        if isinstance(value, timedelta):
            return value
        text = str(value).strip().lower()
        number, unit = text[:-1], text[-1:]
        if unit not in self.UNITS or not number.isdigit() or int(number) < 1 or int(number) > 100_000:
            self.fail(f"{value!r} is not an age; use a whole number of hours, days or weeks: 12h, 90d, 2w", param, ctx)
        return timedelta(**{self.UNITS[unit]: int(number)})


@runs_cli.command("prune", short_help="Delete finished runs older than an age, or than their owners keep them.")
@click.option("--older-than", "age", type=Age(), help="Completed longer ago than this: 90d, 12h, 2w.")
@click.option("--retention", is_flag=True,
              help="Apply each user's own retention setting (users keeping runs for ever are skipped).")
@click.option("--user", "email", help="Only this user's runs (default: everyone's).")
@click.option("--dry-run", is_flag=True, help="Say how many would go; delete nothing.")
@click.option("--batch-size", type=click.IntRange(1, 10_000), default=deleting.PRUNE_BATCH, show_default=True,
              help="Runs per transaction.")
def prune_command(age: timedelta | None, retention: bool, email: str | None, dry_run: bool, batch_size: int) -> None:
    """Delete finished runs that completed longer ago than --older-than, or (--retention) than each
    user's retention setting on the account page says, with everything of them (as deleting one from
    its page does), in batches of one transaction each. Running runs are kept, however old."""
    if (age is None) == (not retention):
        raise click.UsageError("Give exactly one of --older-than AGE (the same age for everyone) and --retention "
                               "(each user's own setting).")
    user = existing_user(email) if email else None
    if retention:
        prune_by_retention(user, dry_run, batch_size)
        return
    assert age is not None
    before = datetime.now(timezone.utc) - age
    whose = f"{user.email}'s" if user else "everyone's"
    found = deleting.prunable(before, user)
    if dry_run:
        click.echo(f"Dry run: {counted(found, 'run')} of {whose} completed before {before:%Y-%m-%d %H:%M} UTC "
                   "would be deleted; nothing was.")
        return
    with progress("Deleting old runs", found) as advance:
        deleted = deleting.prune(before, user, batch_size=batch_size, advance=advance)
    click.echo(f"Deleted {counted(deleted, 'run')} of {whose} completed before {before:%Y-%m-%d %H:%M} UTC.")


def prune_by_retention(user: User | None, dry_run: bool, batch_size: int) -> None:
    """`prune --retention`: each retention setting in use, its runs counted, then deleted."""
    scopes = deleting.retentions(datetime.now(timezone.utc), user)
    whose = f"of {user.email}'s" if user else "of everyone's"
    if not scopes:
        click.echo(f"{user.email} keeps runs for ever; nothing to delete." if user
                   else "No user has a retention setting (everyone keeps runs for ever); nothing to delete.")
        return
    found = {scope.days: deleting.count_where(scope.conditions) for scope in scopes}
    settings = "; ".join(f"kept {counted(scope.days, 'day')}: {counted(scope.users, 'user')}" for scope in scopes)
    if dry_run:
        click.echo(f"Dry run: {counted(sum(found.values()), 'run')} {whose} past their retention ({settings}) "
                   "would be deleted; nothing was.")
        return
    deleted = 0
    with progress("Deleting runs past retention", sum(found.values())) as advance:
        for scope in scopes:
            deleted += deleting.prune_where(scope.conditions, batch_size=batch_size, advance=advance)
    click.echo(f"Deleted {counted(deleted, 'run')} {whose} past their retention ({settings}).")


@runs_cli.command("reap", short_help="Mark open runs with no activity for longer than an age failed.")
@click.option("--older-than", "age", type=Age(), required=True,
              help="No activity (its start, or a step's end) for longer than this: 2h, 1d, 1w.")
@click.option("--user", "email", help="Only this user's runs (default: everyone's).")
@click.option("--dry-run", is_flag=True, help="Say how many would be marked; write nothing.")
@click.option("--batch-size", type=click.IntRange(1, 10_000), default=reaping.BATCH, show_default=True,
              help="Runs per transaction.")
def reap_command(age: timedelta, email: str | None, dry_run: bool, batch_size: int) -> None:
    """Mark open runs failed whose executor has gone quiet: started, and no step ended, for longer
    than --older-than (an executor that crashed never completes its run). Each keeps its steps and
    is priced for them, as a failure its executor reports would be; in batches, one transaction each.
    A run its executor is writing at that moment is left alone."""
    user = existing_user(email) if email else None
    before = datetime.now(timezone.utc) - age
    scope = f"{user.email}'s" if user else "everyone's"
    scope += f"; no activity since {before:%Y-%m-%d %H:%M} UTC"
    found = reaping.abandoned_count(before, user)
    if dry_run:
        click.echo(f"Dry run: {counted(found, 'abandoned run')} would be marked failed ({scope}); nothing was written.")
        return
    with progress("Failing abandoned runs", found) as advance:
        failed = reaping.reap(before, reaping.abandoned_message(age), user, batch_size=batch_size, advance=advance)
    click.echo(f"Marked {counted(failed, 'abandoned run')} failed ({scope}).")


def register_cli(app: Flask) -> None:
    """Attach the command groups to the app's `flask` command."""
    app.cli.add_command(users_cli)
    app.cli.add_command(demo_cli)
    app.cli.add_command(tokens_cli)
    app.cli.add_command(runs_cli)
