"""``tiered-memory`` command line: ``demo`` (offline walkthrough), ``import`` (bulk JSONL
import), ``vault rotate``, plus the sub-commands other packages register under the
``tiered_memory.commands`` entry points (``bench``, from ``tiered-memory-bench``). The core
never imports them."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from collections.abc import Sequence
from importlib.metadata import entry_points
from pathlib import Path

from rich.console import Console
from rich.panel import Panel
from rich.rule import Rule
from rich.table import Table

from .config import MemoryConfig
from .importer import add_import_command
from .memory import TieredMemory
from .recall import format_recall_hits
from .resources import Resources

SESSION_ONE = [
    ("user", "Hi! My name is Kha and I'm learning AI engineering."),
    ("assistant", "Nice to meet you, Kha! What are you building while you learn?"),
    ("user", "A study assistant. My stack is Python with FastAPI for the API and ChromaDB as the vector store."),
    ("assistant", "Solid choices: FastAPI gives you async endpoints and ChromaDB runs embedded, no server needed."),
    ("user", "I prefer short answers with code examples, please."),
    ("assistant", "Got it: short answers, with code."),
    ("user", "How should I chunk my lecture notes before embedding them?"),
    ("assistant", "Split by heading, then into ~300-token chunks with a 50-token overlap; keep the heading as metadata."),
    ("user", "My deadline for the first demo is March 3rd."),
    ("assistant", "Noted: first demo due March 3rd. Want a plan for the next two weeks?"),
    ("user", "Yes. Also, change the API port to 8080. My API key is 123."),
    ("assistant", "Week 1: ingestion + chunking + ChromaDB; week 2: FastAPI endpoints on port 8080 and a small UI."),
]  # fmt: skip

SESSION_TWO_QUESTION = "What vector store did I say I was using for my project?"


def _demo(args: argparse.Namespace) -> int:
    if args.path:
        return _walkthrough(args, Path(args.path))
    with tempfile.TemporaryDirectory(prefix="tiered-memory-demo-") as scratch:
        return _walkthrough(args, Path(scratch))  # the temp store is removed afterwards


def _walkthrough(args: argparse.Namespace, path: Path) -> int:
    console = Console(highlight=False)
    keyed = bool(os.environ.get("OPENAI_API_KEY"))
    # Inline compaction, so each turn shows what it did; apps default to background compaction.
    config = MemoryConfig(
        window_tokens=args.window_tokens, summary_tokens=args.summary_tokens, compaction="inline"
    )
    with Resources() as resources:
        return _sessions(console, config, path, resources, keyed)


def _sessions(
    console: Console, config: MemoryConfig, path: Path, resources: Resources, keyed: bool
) -> int:
    console.print(
        Panel.fit(
            "[bold]tiered-memory demo[/bold]\n"
            f"window budget [cyan]{config.window_tokens}[/cyan] tokens · summary budget "
            f"[cyan]{config.summary_tokens}[/cyan] tokens · store [dim]{path}[/dim]\n"
            f"summarizer: [magenta]{'gpt-4o-mini (OPENAI_API_KEY set)' if keyed else 'offline extractive'}"
            "[/magenta] · embedder: [magenta]all-MiniLM-L6-v2 int8, embedded[/magenta]",
            border_style="blue",
        )
    )
    mem = TieredMemory("monday", "kha", path, config, resources=resources)
    console.print(Rule("[bold]Session 1[/bold] (user kha, session monday)"))
    for role, text in SESSION_ONE:
        calls_before = mem.stats.summarizer_calls
        mem.add(role, text)
        stats = mem.stats
        colour = "green" if role == "user" else "yellow"
        console.print(
            f"[{colour}]{role:>9}[/{colour}] {text}  "
            f"[dim](window {stats.window_tokens} tok, summary {stats.summary_tokens} tok)[/dim]"
        )
        if stats.summarizer_calls > calls_before:
            console.print(
                Panel(
                    mem.summary,
                    title=f"compaction: oldest messages → summary ({stats.summary_tokens} tokens)",
                    border_style="magenta",
                )
            )
    console.print(Rule("Final context sent to the model"))
    table = Table(show_lines=False, expand=True)
    table.add_column("role", style="cyan", no_wrap=True)
    table.add_column("content")
    for message in mem.context():
        table.add_row(message["role"], message["content"])
    console.print(table)
    stats = mem.stats
    console.print(
        f"history [bold]{stats.history_tokens}[/bold] tokens → context [bold]{stats.context_tokens}"
        f"[/bold] tokens (saved {stats.tokens_saved}); summarizer calls: {stats.summarizer_calls}"
    )
    console.print(Rule("[bold]Session 2[/bold] (same user, new session tuesday)"))
    later = TieredMemory("tuesday", "kha", path, config, resources=resources)
    console.print(f"[green]{'user':>9}[/green] {SESSION_TWO_QUESTION}")
    console.print("[dim]the new session's window is empty: the agent calls recall[/dim]")
    hits = later.recall(SESSION_TWO_QUESTION, k=3)
    console.print(Panel(format_recall_hits(hits), title="recall_memory(...)", border_style="green"))
    found = any("ChromaDB" in hit.text for hit in hits)
    console.print(
        "[bold green]recalled from session 1: ChromaDB[/bold green]"
        if found
        else "[bold red]the fact was not recalled[/bold red]"
    )
    return 0 if found and _secret_round_trip(console, config, path, resources, later) else 1


def _secret_round_trip(
    console: Console, config: MemoryConfig, path: Path, resources: Resources, later: TieredMemory
) -> bool:
    """The seed's example: the key said in session 1 comes back to its owner only, and no file
    on disk holds it in plain text (the vault keeps it encrypted)."""
    console.print(Rule("[bold]Secrets[/bold] (the vault, the default secrets policy)"))
    console.print(f"[green]{'user':>9}[/green] What was my key?")
    hits = later.recall("What was my API key?", k=2)
    console.print(Panel(format_recall_hits(hits), title="recall_memory(...)", border_style="green"))
    owner_gets_it = any("key is 123" in hit.text for hit in hits)
    stranger = TieredMemory("intruder", "someone-else", path, config, resources=resources)
    stranger_gets_it = any("123" in h.text for h in stranger.recall("What was my API key?"))
    on_disk = [
        f
        for f in path.rglob("*")
        if f.is_file() and f.name != "vault.key" and b"key is 123" in f.read_bytes()
    ]
    console.print(
        f"owner recalls it: {owner_gets_it} · another user recalls it: {stranger_gets_it} · "
        f"files holding it in plain text: {len(on_disk)} (the summary shows only a placeholder)"
    )
    return owner_gets_it and not stranger_gets_it and not on_disk


def _vault_rotate(args: argparse.Namespace) -> int:
    """Re-encrypt every vault entry of a store under a new key (the old one is required)."""
    from .errors import TieredMemoryError
    from .store import SqlSessionStore
    from .vault import KEY_ENV, KEY_FILE, rotate_vault_key

    path = Path(args.path)
    try:
        store = SqlSessionStore(args.url) if args.url else SqlSessionStore.at_path(path)
        count, key = rotate_vault_key(store.engine, path, args.old_key, args.new_key)
    except TieredMemoryError as exc:
        print(f"tiered-memory vault rotate: {exc}", file=sys.stderr)
        return 1
    print(f"re-encrypted {count} vault entries under the new key")
    if args.old_key is None and not os.environ.get(KEY_ENV):
        print(f"the key file {path / KEY_FILE} now holds the new key")
    elif not args.new_key:
        print(
            f"new key (set it as MemoryConfig.vault_key or ${KEY_ENV} everywhere): {key.decode()}"
        )
    return 0


COMMAND_ENTRY_POINTS = "tiered_memory.commands"
_INSTALL_HINTS = {"bench": "pip install -e ./bench (from a checkout of tiered-memory)"}


def _plugin_command(name: str, argv: Sequence[str]) -> int:
    """Run a sub-command registered by another package (``tiered_memory.commands``)."""
    for entry in entry_points(group=COMMAND_ENTRY_POINTS):
        if entry.name == name:
            return int(entry.load()(list(argv)))
    hint = _INSTALL_HINTS.get(name, "install the package that provides it")
    print(f"tiered-memory {name}: not installed ({hint})", file=sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] and argv[0] in _plugin_names():
        return _plugin_command(argv[0], argv[1:])
    parser = argparse.ArgumentParser(prog="tiered-memory", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log what the memory does")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="offline walkthrough of the three tiers")
    demo.add_argument("--path", help="store directory (default: a new temp dir)")
    demo.add_argument("--window-tokens", type=int, default=120)
    demo.add_argument("--summary-tokens", type=int, default=120)
    demo.set_defaults(run=_demo)
    vault = commands.add_parser("vault", help="manage the secrets vault")
    vault_commands = vault.add_subparsers(dest="vault_command", required=True)
    rotate = vault_commands.add_parser(
        "rotate", help="re-encrypt every vault entry under a new key, in one transaction"
    )
    rotate.add_argument("--path", default="./.tiered_memory", help="the memory's directory")
    rotate.add_argument("--url", help="session store URL (default: SQLite under --path)")
    rotate.add_argument(
        "--old-key",
        help="the current key (default: $TIERED_MEMORY_VAULT_KEY, else the key file); a key "
        "that starts with '-' is given as --old-key=KEY",
    )
    rotate.add_argument(
        "--new-key", help="the new key (default: a new one is made); --new-key=KEY as above"
    )
    rotate.set_defaults(run=_vault_rotate)
    add_import_command(commands)
    for name in sorted(_plugin_names()):
        commands.add_parser(name, help=f"tiered-memory {name} --help")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    return int(args.run(args))


def _plugin_names() -> set[str]:
    return {entry.name for entry in entry_points(group=COMMAND_ENTRY_POINTS)} | set(_INSTALL_HINTS)


__all__ = ["COMMAND_ENTRY_POINTS", "main"]


if __name__ == "__main__":
    sys.exit(main())
