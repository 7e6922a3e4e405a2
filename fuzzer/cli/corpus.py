"""`tcfuzz corpus list|add|minimize`: look after a fuzzing corpus (registered through
fuzzer.cli.COMMAND_MODULES)."""

from __future__ import annotations

import argparse
from pathlib import Path

from fuzzer.cli import EXIT_OK, UsageError


def register(commands) -> dict:
    """Add this package's subcommands to ``commands``; their handlers by name."""
    corpus = commands.add_parser("corpus", help="list, add to or minimize a corpus directory")
    actions = corpus.add_subparsers(dest="corpus_command", required=True)
    listing = actions.add_parser("list", help="entries with origin, nodes and fingerprint size")
    listing.add_argument("directory", type=Path, metavar="DIR", help="a corpus directory")
    add = actions.add_parser("add", help="import every .onnx file of MODELS_DIR as a seed")
    add.add_argument("directory", type=Path, metavar="DIR", help="a corpus directory (created if absent)")
    add.add_argument("models", type=Path, metavar="MODELS_DIR", help="a directory of .onnx files")
    minimize = actions.add_parser("minimize", help="drop entries whose coverage others already reach")
    minimize.add_argument("directory", type=Path, metavar="DIR", help="a corpus directory")
    return {"corpus": command_corpus}


def open_corpus(directory: Path, *, create: bool = False):
    from corpus.corpus import Corpus
    from fuzzer.store import DATABASE_NAME, StoreError

    if not create and not (directory / DATABASE_NAME).is_file():
        raise UsageError(f"{directory} is not a corpus directory; "
                         f"make one with `tcfuzz corpus add {directory} MODELS_DIR`")
    try:
        return Corpus.open(directory)
    except StoreError as error:
        raise UsageError(str(error)) from None


def coverage(entries) -> int:
    return len(frozenset().union(*(e.fingerprint for e in entries)))


def command_corpus(args: argparse.Namespace) -> int:
    if args.corpus_command == "add":
        if not args.models.is_dir():
            raise UsageError(f"{args.models} is not a directory; pass a directory of .onnx files")
        with open_corpus(args.directory, create=True) as corpus:
            result = corpus.import_onnx_dir(args.models)
        for line in result.rejected:
            print(f"rejected {line}")
        print(f"imported {len(result.imported)}, already present {len(result.duplicates)}, "
              f"rejected {len(result.rejected)} of {args.models}")
        return EXIT_OK
    with open_corpus(args.directory) as corpus:
        entries = corpus.entries()
        if args.corpus_command == "list":
            for entry in entries:
                print(f"{entry.hash[:16]}  {entry.origin:<32} nodes {len(entry.graph.nodes):>3}  "
                      f"fingerprint {len(entry.fingerprint):>6}  picked {entry.hits}")
            print(f"{len(entries)} entries, coverage {coverage(entries)}")
            return EXIT_OK
        result = corpus.minimize()
    print(f"before: {result.entries_before} entries, coverage {result.coverage_before}")
    print(f"after:  {result.entries_after} entries, coverage {result.coverage_after}")
    return EXIT_OK
