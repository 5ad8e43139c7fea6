"""Run the trip-briefing pipeline offline: python run.py [--backend trio] [CITY ...]"""

from __future__ import annotations

import argparse
from pathlib import Path

import anyio

import modelwire

HERE = Path(__file__).resolve().parent


async def main(cities: list[str]) -> None:
    registry = modelwire.tools.load_tools(HERE / "tools.yaml")
    async with registry:  # closes the tools' resource pools at the end
        orchestrator = modelwire.pipelines.Orchestrator(registry)
        orchestrator.load_pipelines(HERE / "pipeline.yaml")
        for city in cities:
            result = await orchestrator.execute("trip_briefing", {"city": city})
            print(f"== {city}")
            print("report:")
            print(result.outputs["report"])
            print("steps:")
            for step in result.steps.values():
                detail = f"tool={step.tool}" if step.tool else ""
                if step.branch:
                    detail += f" branch={step.branch}"
                print(f"  {step.name:<8} {step.status:<7} attempts={step.attempts} {detail}".rstrip())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio")
    parser.add_argument("cities", nargs="*", default=["Cairo", "Oslo"])
    args = parser.parse_args()
    anyio.run(main, args.cities, backend=args.backend)
