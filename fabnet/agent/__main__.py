"""``python -m fabnet.agent --config agent.toml``: the agent without the ``fabnet`` group."""

from __future__ import annotations

import logging
import sys

from fabnet.agent.cli import agent_command
from fabnet.errors import FabnetError


def main() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        agent_command.main(standalone_mode=False)
    except FabnetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
