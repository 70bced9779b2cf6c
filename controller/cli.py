"""Command line (argument parsing only; calls app, or remote for a running controller).

Local (this process reconciles): ``keelson run | sync [STACK] | plan | validate``.
Remote (issue 13.3: asks the controller at ``--server`` / KEELSON_SERVER over its HTTP API):
``keelson status [STACK] | history STACK | diff [STACK] | sync STACK --now | suspend STACK |
resume STACK | rollback STACK [--to REVISION]``. ``keelson completion bash|zsh`` prints a shell
completion script (shtab).

Exit codes: 0 success (``sync``: every stack converged), 1 a stack failed or was rolled back (or
``validate`` found errors, or ``plan`` could not plan a stack, or the controller refused a
remote command or could not be reached), 2 bad usage or configuration (one line on stderr,
never a traceback). ``plan --detailed-exitcode`` exits as ``terraform plan -detailed-exitcode``:
0 no changes, 1 error, 2 changes.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from enum import Enum
from typing import List, Optional

from controller import __version__
from controller.config import Settings, settings_from_env, settings_table
from controller.remote import DEFAULT_SERVER, DEFAULT_TIMEOUT_S, REMOTE_COMMANDS, run_remote
from controller.errors import ConfigError, KeelsonError, RemoteError
from controller.telemetry.scrub import ScrubbingWriter, scrub

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
NOTIFY_FLUSH_S = 15.0  # seconds `keelson sync` waits, at most, for its notifications to go out


def build_parser() -> argparse.ArgumentParser:
    """The argument parser; every option also reads a KEELSON_* variable (option wins)."""
    p = argparse.ArgumentParser(prog="keelson", description="GitOps controller for Docker Swarm.")
    p.add_argument("--version", action="version", version=f"keelson {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    def _common(sp: argparse.ArgumentParser) -> None:
        for f, meta in settings_table():  # one option per setting that has one
            if not meta.option:
                continue
            default = f.default.value if isinstance(f.default, Enum) else f.default
            shown = f", default {default}" if default not in ("", ()) else ""
            if meta.kind == "list":
                sp.add_argument(meta.option, action="append", default=[], metavar="NAME",
                                help=f"{meta.help} ({meta.env}=a,b)")
            else:
                sp.add_argument(meta.option, help=f"{meta.help} ({meta.env}{shown})")
        sp.add_argument("--log-level", default=os.environ.get("KEELSON_LOG_LEVEL", "INFO"),
                        help="DEBUG, INFO, WARNING or ERROR (KEELSON_LOG_LEVEL, default INFO)")
        sp.add_argument("--log-format", default=os.environ.get("KEELSON_LOG_FORMAT", "logfmt"),
                        help="logfmt or json (KEELSON_LOG_FORMAT, default logfmt)")
        # every setting without an option is still named in --help (issue 13.3)
        env_only = [f"  {meta.env:<34} {meta.help}" for _, meta in settings_table()
                    if not meta.option]
        sp.formatter_class = argparse.RawDescriptionHelpFormatter
        sp.epilog = "settings read from the environment only:\n" + "\n".join(env_only)

    _common(sub.add_parser("run", help="reconcile in a loop (poll, webhook, file events)"))
    s = sub.add_parser("sync", help="one pass here (exit 0 if every stack converged, 1 if not); "
                                    "with STACK --now: ask the running controller")
    _common(s)
    s.add_argument("stack_name", nargs="?", metavar="STACK",
                   help="only this stack (a local pass, like --stack; with --now, remote)")
    s.add_argument("--now", action="store_true",
                   help="ask the controller at --server for a pass of STACK now, wait for it")
    _remote(s, stack=False)
    s.add_argument("--json", action="store_true", help="print the status as JSON")
    s.add_argument("--allow-mass-prune", action="store_true",
                   help="remove stacks even past KEELSON_PRUNE_MAX_STACKS/_RATIO, this pass only")
    pl = sub.add_parser("plan", help="print what a pass would create/update/remove")
    _common(pl)
    pl.add_argument("--detailed-exitcode", action="store_true",
                    help="exit 0 when nothing would change, 2 when something would, 1 on error")
    pl.add_argument("--show-merged", action="store_true",
                    help="print each stack's document after merging its files")
    v = sub.add_parser("validate", help="check manifests offline")
    v.add_argument("dir", nargs="?", default="manifests", help="manifests folder (default manifests)")
    v.add_argument("--log-level", default="WARNING")
    v.add_argument("--policy", help="admission level to check against (KEELSON_POLICY, "
                                    "default baseline); stricter levels are shown as notes")
    v.add_argument("--show-merged", action="store_true",
                   help="print each stack's document after merging its files")
    _remote_commands(sub)
    return p


def _remote(sp: argparse.ArgumentParser, stack: Optional[str] = "required",
            output: bool = False, wait: bool = False) -> None:
    """Options of a command that talks to a running controller (issue 13.3)."""
    if stack == "required":
        sp.add_argument("stack_name", metavar="STACK", help="the stack")
    elif stack == "optional":
        sp.add_argument("stack_name", nargs="?", metavar="STACK", help="only this stack")
    sp.add_argument("--server", help="URL of the running keelson "
                                     f"(KEELSON_SERVER, default {DEFAULT_SERVER})")
    sp.add_argument("--token-file", help="file holding the API token "
                                         "(KEELSON_API_TOKEN_FILE)")
    sp.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S,
                    help=f"seconds to wait for the controller (default {DEFAULT_TIMEOUT_S:g})")
    if output:
        sp.add_argument("-o", "--output", choices=("table", "json", "yaml"), default="table",
                        help="output format (default table)")
    if wait:
        sp.add_argument("--no-wait", action="store_true",
                        help="return once the controller accepted the request")


def _remote_commands(sub) -> None:
    """The commands that ask a running controller (``keelson run``) over HTTP."""
    _remote(sub.add_parser("status", help="stacks' sync and health (from the controller)"),
            stack="optional", output=True)
    _remote(sub.add_parser("history", help="a stack's last attempts (from the controller)"),
            output=True)
    _remote(sub.add_parser("diff", help="what the controller would change, field by field"),
            stack="optional", output=True)
    _remote(sub.add_parser("suspend", help="stop reconciling a stack: no writes, no prune, "
                                           "no drift heal, until resume"), wait=True)
    _remote(sub.add_parser("resume", help="reconcile a suspended or rolled-back stack again"),
            wait=True)
    rb = sub.add_parser("rollback", help="apply an earlier revision of a stack and hold it "
                                         "there until the next commit changes it, or resume")
    _remote(rb, wait=True)
    rb.add_argument("--to", metavar="REVISION",
                    help="commit id (default: the last good revision before the current one)")
    c = sub.add_parser("completion", help="print a shell completion script")
    c.add_argument("shell", choices=("bash", "zsh"))


def settings_from(args: argparse.Namespace, environ) -> Settings:
    """Merge defaults < environment < options into validated Settings (ConfigError if bad)."""
    given: dict = {}
    for f, meta in settings_table():
        if not meta.option:
            continue
        value = getattr(args, meta.option.lstrip("-").replace("-", "_"), None)
        if value in (None, []):
            continue
        given[meta.env] = (f.name, tuple(value) if meta.kind == "list"
                           else meta.parse(value, meta.option))
    # an option replaces its variable entirely: a bad KEELSON_INTERVAL must not fail a run
    # that passes a good --interval
    kw = settings_from_env({k: v for k, v in environ.items() if k not in given})
    kw.update(dict(given.values()))
    if "workdir" not in kw:
        kw["workdir"] = os.path.join(os.path.expanduser("~"), ".cache", "keelson") \
            if os.geteuid() != 0 else Settings.workdir
    return Settings(**kw).validated()


def _completion(shell: str) -> int:
    """Print the completion script for ``shell`` (needs the ``shtab`` package)."""
    try:
        import shtab
    except ImportError:
        print("keelson: completion needs the shtab package (pip install shtab)", file=sys.stderr)
        return EXIT_USAGE
    print(shtab.complete(build_parser(), shell=shell))
    return EXIT_OK


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of the ``keelson`` console script; returns the exit code."""
    args = build_parser().parse_args(argv)
    if args.command == "completion":
        return _completion(args.shell)
    if args.command in REMOTE_COMMANDS or (args.command == "sync" and args.now):
        if args.command == "sync" and not args.stack_name:
            print("keelson: sync --now needs a STACK (a full pass: `keelson sync`)",
                  file=sys.stderr)
            return EXIT_USAGE
        try:
            return run_remote(args, dict(os.environ), ScrubbingWriter(sys.stdout))
        except ConfigError as exc:
            print(f"keelson: {scrub(str(exc))}", file=sys.stderr)
            return EXIT_USAGE
        except RemoteError as exc:
            print(f"keelson: {scrub(str(exc))}", file=sys.stderr)
            return EXIT_FAILED
    if args.command == "sync" and args.stack_name:
        args.stack = [*args.stack, args.stack_name]  # a local pass of this stack only
    from controller.telemetry.logs import setup_logging
    try:
        setup_logging(args.log_level, getattr(args, "log_format", None)
                      or os.environ.get("KEELSON_LOG_FORMAT", "logfmt"))
        if args.command == "validate":
            from controller.validate import validate_dir
            # issue 7: the same allowed variables and size caps as run, sync and plan
            from controller.render.compose.sandbox import RepoLimits
            from controller.render.compose.variables import allowed_variables
            local = Settings(**settings_from_env(os.environ))
            return validate_dir(args.dir, allowed_variables(os.environ, local.env_allow),
                                ScrubbingWriter(sys.stdout), limits=RepoLimits.from_settings(local),
                                level=args.policy, show_merged=args.show_merged,
                                settings_env=os.environ)
        settings = settings_from(args, os.environ)
        from controller.app import App
        app = App(settings)
        if args.command == "run":
            # start-up errors (an address already bound, a folder that cannot be watched) are
            # reported like the others, not as a traceback
            app.run_forever()
            return EXIT_OK
    except ConfigError as exc:
        print(f"keelson: {scrub(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except KeelsonError as exc:
        print(f"keelson: {scrub(str(exc))}", file=sys.stderr)
        return EXIT_FAILED
    if args.command == "plan":
        outcome = app.sync(dry_run=True)
        from controller.report import plan_exit_code, print_plan
        print_plan(outcome, sys.stdout, show_merged=args.show_merged)
        return plan_exit_code(outcome, args.detailed_exitcode)
    outcome = app.sync(allow_mass_prune=args.allow_mass_prune)
    if app.notifier is not None:  # one pass, then exit: deliver what it told first
        app.notifier.close(timeout_s=NOTIFY_FLUSH_S)
    if args.json:
        print(json.dumps(app.store.snapshot(), indent=2, default=str))  # scrubbed by the store
    else:
        from controller.report import print_summary
        print_summary(outcome, sys.stdout)
    return EXIT_OK if outcome.converged else EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
