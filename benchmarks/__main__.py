"""``python -m benchmarks <command> ...``"""

from .cli import main

raise SystemExit(main())
