"""Create `config/.env` from `config/.env.example` and the data folder; never overwrite silently."""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from config.errors import ConfigError
from config.settings import ENV_FILE, load_settings

EXAMPLE = ENV_FILE.with_name(".env.example")


def setup(env_file: Path = ENV_FILE, force: bool = False) -> list[str]:
    """Copy the example, validate the result, create the data folder; return what was done."""
    done = []
    if env_file.exists() and not force:
        done.append(f"kept existing {env_file} (use --force to replace it)")
    else:
        shutil.copyfile(EXAMPLE, env_file)
        env_file.chmod(0o600)
        done.append(f"created {env_file} from {EXAMPLE.name}")
    settings = load_settings(env_file)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    done.append(f"data folder ready: {settings.data_dir}")
    done.append(f"market: {settings.market}, trading mode: {settings.trading_mode}")
    return done


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--force", action="store_true", help="overwrite an existing config/.env")
    args = parser.parse_args(argv)
    try:
        for line in setup(force=args.force):
            print(line)
    except ConfigError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 2
    print(
        "Next: edit config/.env (MARKET=binance and your API keys for real data), "
        "then start Kryptelion with: python run.py"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
