"""Every tutorial script in examples/ has a docs page and the command line CI relies on.

CI runs each script with `--quick --out DIR` (see .ci/run); running them here would cost
minutes, so these checks stay static: the parser accepts the flags, the page shows the
script and sits in the site's navigation.
"""

import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))


def _load(path: Path):
    spec = importlib.util.spec_from_file_location(f"example_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # scripts import their heavy modules inside main()
    return module


def test_there_are_examples():
    assert {p.stem for p in EXAMPLES} >= {"co2", "seatbelts", "electricity", "uneven"}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_parses_quick_and_out(path):
    module = _load(path)
    args = module.parse_args(["--quick", "--out", "somewhere"])
    assert args.quick is True
    assert args.out == "somewhere"
    assert module.parse_args([]).quick is False


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_has_a_docs_page(path):
    page = ROOT / "docs" / "tutorials" / f"{path.stem}.md"
    assert page.is_file(), f"{path.name} has no page docs/tutorials/{path.stem}.md"
    text = page.read_text()
    assert f'--8<-- "examples/{path.name}"' in text, "the page should include the script"
    assert f"python examples/{path.name} --out" in text, "the page should give the command"
    assert f"tutorials/{path.stem}.md" in (ROOT / "mkdocs.yml").read_text()


def test_every_image_in_the_docs_exists():
    # mkdocs' strict mode checks links between pages but not image paths.
    pages = sorted((ROOT / "docs").rglob("*.md"))
    missing = []
    for page in pages:
        for target in re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", page.read_text()):
            if not (page.parent / target).resolve().is_file():
                missing.append(f"{page.relative_to(ROOT)}: {target}")
    assert pages
    assert not missing, missing
