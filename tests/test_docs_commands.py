"""The commands the documentation marks as runnable really run, as written.

The convention (explained to readers in docs/cli.md, "About the examples"):

* A fenced ```bash block is runnable when the line just before its fence is
  ``<!-- docs-test -->``. ``<!-- docs-test slow -->`` runs it only with ``--runslow``;
  ``<!-- docs-test exit=1 -->`` expects every command in it to fail with that exit code.
* The runnable blocks of one Markdown file run in order in one fresh folder, like one shell
  session: later commands use the files earlier ones wrote.
* A block line is ``python run.py ARGS`` (any Python path: ``.venv/bin/python``, ``python3``),
  ``deepscem ARGS``, ``NAME=value``, ``mkdir -p DIR``, ``rm -f FILE`` (in the folder), a comment
  or blank. Anything else fails the test, so a runnable block cannot hold a command that is not
  checked. Commands that open the GUI (no arguments, ``--gui-no-safe``) are not allowed in runnable blocks.
* ``$NAME`` / ``${NAME}`` are expanded. The test fixes ``DATA`` (an empty folder standing in for
  ``../shared/data/lucchi-pp``) and ``OUT``; a document's own ``DATA=...`` / ``OUT=...`` is kept
  as written only where the test does not fix the variable.
* A ``.tif``/``.tiff``/``.npy`` argument that does not exist when its command runs is generated:
  a (16, 128, 128) uint8 EM-like volume ((165, 64, 64) under ``$DATA``), or its mitochondria mask
  (0/255) when the file name contains "label". So the examples' file names are small generated files here.
* Training is shrunk by appending options (argparse keeps the last value of a repeated option,
  so the command runs with its own files and options, only smaller): ``model create`` gets
  ``--filters 4 --depth 2``; ``train`` gets ``--patch Z 32 32`` (Z = 1 for a documented 2D patch,
  else 4), ``--batch-size 2 --steps-per-epoch 2 --epochs 1`` and at most 1 validation step; the
  original DeepSCEM's ``--train-model`` gets the same values in its last seven places. The slow real-data run
  of the tutorial keeps every size as written and only cuts steps, epochs and validation steps.

Commands run in this process through ``deepscem.cli.main`` (TensorFlow is imported once).
"""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from deepscem import cli

ROOT = Path(__file__).resolve().parents[1]
DOC_FILES = [ROOT / "README.md", ROOT / "INSTALL.md", *sorted((ROOT / "docs").glob("*.md"))]
MARKER = re.compile(r"^<!--\s*docs-test(?P<opts>[^>]*?)\s*-->\s*$")
FENCE = re.compile(r"^```(\w*)\s*$")
VAR = re.compile(r"\$(\w+)|\$\{(\w+)\}")
ASSIGN = re.compile(r"^([A-Za-z_]\w*)=(\S*)$")
TINY_SHAPE = (16, 128, 128)
DATA_SHAPE = (165, 64, 64)  # files under $DATA: lucchi-pp's 165 slices, small frames

os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "2")


@dataclass
class Block:
    """One runnable ```bash block: its lines (continuations joined) and its marker options."""

    path: Path
    line: int                        # 1-based line of the opening fence
    lines: list[str]
    slow: bool = False
    exit_code: int = 0


@dataclass
class Session:
    """What the blocks of one file share: the folder, the variables and the training sizes."""

    folder: Path
    fixed: dict[str, str]
    variables: dict[str, str] = field(default_factory=dict)
    mode: str = "tiny"               # "tiny": small models and patches; "short": sizes as written
    commands: int = 0


def parse_blocks(text: str, path: Path = Path("<text>")) -> list[Block]:
    """The runnable blocks of a Markdown text (see the module docstring)."""
    blocks: list[Block] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        marker = MARKER.match(lines[i].strip())
        if marker and i + 1 < len(lines) and (fence := FENCE.match(lines[i + 1].strip())):
            if fence.group(1) not in ("bash", "sh", "shell"):
                raise ValueError(f"{path}:{i + 2}: a docs-test block must be ```bash")
            opts = marker.group("opts").split()
            body, j = [], i + 2
            while j < len(lines) and not lines[j].strip().startswith("```"):
                body.append(lines[j])
                j += 1
            block = Block(path, i + 2, _join_continuations(body), slow="slow" in opts)
            for opt in opts:
                if opt.startswith("exit="):
                    block.exit_code = int(opt.split("=", 1)[1])
            blocks.append(block)
            i = j
        i += 1
    return blocks


def _join_continuations(lines: list[str]) -> list[str]:
    out, current = [], ""
    for line in lines:
        if line.rstrip().endswith("\\"):
            current += line.rstrip()[:-1] + " "
            continue
        out.append(current + line)
        current = ""
    if current:
        out.append(current)
    return out


def command_argv(tokens: list[str]) -> list[str] | None:
    """``python run.py a b`` / ``deepscem a b`` -> ``[a, b]``; None for anything else."""
    if len(tokens) >= 2 and re.search(r"(^|[/\\])python(3(\.\d+)?)?(\.exe)?$", tokens[0]) \
            and tokens[1].replace("\\", "/").endswith("run.py"):
        return tokens[2:]
    if tokens and tokens[0] == "deepscem":
        return tokens[1:]
    return None


def expand(text: str, variables: dict[str, str]) -> str:
    def value(match: re.Match) -> str:
        name = match.group(1) or match.group(2)
        if name not in variables:
            raise KeyError(f"${name} is not set")
        return variables[name]
    return VAR.sub(value, text)


def shrink(argv: list[str], mode: str) -> list[str]:
    """Training options of ``argv`` reduced for the test (see the module docstring)."""
    argv = list(argv)
    if "--train-model" in argv:
        k = argv.index("--train-model") + 1
        values = argv[k:k + 12]
        if len(values) == 12:
            z = values[6] if mode == "short" else ("1" if values[6] == "1" else "4")
            yx = values[7:9] if mode == "short" else ["32", "32"]
            batch = values[5] if mode == "short" else "2"
            valid = str(min(int(values[11]), 1)) if values[11].isdigit() else values[11]
            argv[k + 5:k + 12] = [batch, z, *yx, "2", "1", valid]
        return argv
    if argv[:2] == ["model", "create"] and mode == "tiny":
        return argv + ["--filters", "4", "--depth", "2"]
    if argv[:1] == ["train"]:
        extra = ["--steps-per-epoch", "2", "--epochs", "1"]
        if "--validation-steps" not in argv or argv[argv.index("--validation-steps") + 1] != "0":
            extra += ["--validation-steps", "1"]
        if mode == "tiny":
            z = argv[argv.index("--patch") + 1] if "--patch" in argv else "1"
            extra += ["--patch", "1" if z == "1" else "4", "32", "32", "--batch-size", "2"]
        return argv + extra
    return argv


def make_input(path: Path, shape: tuple[int, int, int] = TINY_SHAPE) -> None:
    """A missing image (EM-like, uint8) or label (its mask as 0/255) for an example command."""
    image, label = _volume(shape)
    data = label * np.uint8(255) if "label" in path.name.lower() else image
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".npy":
        np.save(path, data)
    else:
        import tifffile

        tifffile.imwrite(path, data)


_VOLUMES: dict[tuple[int, int, int], tuple[np.ndarray, np.ndarray]] = {}


def _volume(shape: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    if shape not in _VOLUMES:
        from deepscem.dataset.synthetic import em_like_volume

        _VOLUMES[shape] = em_like_volume(shape, seed=0, n_mito=6)
    return _VOLUMES[shape]


def run_block(block: Block, session: Session, capsys) -> None:
    for line in block.lines:
        where = f"{block.path.name}:{block.line}: {line.strip()}"
        tokens = shlex.split(line, comments=True)
        if not tokens:
            continue
        if len(tokens) == 1 and (assign := ASSIGN.match(tokens[0])):
            name, value = assign.groups()
            if name not in session.fixed:
                session.variables[name] = expand(value, {**session.variables, **session.fixed})
            continue
        tokens = [expand(t, {**session.variables, **session.fixed}) for t in tokens]
        if tokens[:2] == ["mkdir", "-p"]:
            for folder in tokens[2:]:
                (session.folder / folder).mkdir(parents=True, exist_ok=True)
            continue
        if tokens[:2] == ["rm", "-f"]:
            for name in tokens[2:]:
                target = (session.folder / name).resolve()
                assert target.parent == session.folder.resolve(), f"{where}: rm only in the folder"
                target.unlink(missing_ok=True)
            continue
        argv = command_argv(tokens)
        assert argv is not None, f"{where}: only 'python run.py ...' commands can be in a docs-test block"
        assert argv and "--gui-no-safe" not in argv, f"{where}: opens the GUI; not runnable in a test"
        data = Path(session.fixed["DATA"]).resolve()
        for arg in argv:
            p = session.folder / arg
            if p.suffix.lower() in (".tif", ".tiff", ".npy") and not p.exists():
                make_input(p, DATA_SHAPE if data in p.resolve().parents else TINY_SHAPE)
        argv = shrink(argv, session.mode)
        try:
            code = cli.main(argv)
        except SystemExit as exc:  # argparse usage errors
            code = exc.code if isinstance(exc.code, int) else 1
        session.commands += 1
        out = capsys.readouterr()
        assert code == block.exit_code, (
            f"{where}\n  ran: {shlex.join(argv)}\n  exit {code}, expected {block.exit_code}\n"
            f"  stderr tail: {out.err[-1500:]}")
        if block.exit_code == 1:
            assert out.err.strip().splitlines()[-1].startswith("error: "), where


def _doc_blocks() -> dict[Path, list[Block]]:
    found = {}
    for path in DOC_FILES:
        if path.is_file():
            blocks = parse_blocks(path.read_text(encoding="utf-8"), path)
            if blocks:
                found[path] = blocks
    return found


DOC_BLOCKS = _doc_blocks()


def _session(tmp_path: Path, monkeypatch, mode: str = "tiny", data: Path | None = None) -> Session:
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    data = data or tmp_path / "data"
    out = tmp_path / "out"
    for folder in (data, out):
        folder.mkdir(exist_ok=True)
    return Session(work, {"DATA": str(data), "OUT": str(out)}, mode=mode)


@pytest.mark.parametrize("path", list(DOC_BLOCKS), ids=lambda p: str(p.relative_to(ROOT)))
def test_documented_commands_run_as_written(path, tmp_path, monkeypatch, capsys):
    session = _session(tmp_path, monkeypatch)
    for block in DOC_BLOCKS[path]:
        if not block.slow:
            run_block(block, session, capsys)


@pytest.mark.slow
@pytest.mark.parametrize("path", [p for p, bs in DOC_BLOCKS.items() if any(b.slow for b in bs)],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_documented_slow_commands_run_as_written(path, tmp_path, monkeypatch, capsys):
    session = _session(tmp_path, monkeypatch)
    for block in DOC_BLOCKS[path]:
        run_block(block, session, capsys)


@pytest.mark.slow
def test_tutorial_on_the_real_lucchi_data(shared_data, tmp_path, monkeypatch, capsys):
    """docs/tutorial.md on ../shared/data/lucchi-pp with its sizes as written (training cut short)."""
    session = _session(tmp_path, monkeypatch, mode="short", data=shared_data / "lucchi-pp")
    for block in DOC_BLOCKS[ROOT / "docs" / "tutorial.md"]:
        if not block.slow:
            run_block(block, session, capsys)


def test_the_manuals_hold_runnable_examples():
    """The convention is in use: a marker typo must not silently turn the checks off."""
    counts = {p.name: sum(len([ln for ln in b.lines if command_argv(shlex.split(ln, comments=True))
                               is not None]) for b in bs) for p, bs in DOC_BLOCKS.items()}
    assert counts.get("cli.md", 0) >= 20, counts
    assert counts.get("tutorial.md", 0) >= 6, counts


def test_a_failing_documented_command_fails_the_check(tmp_path, monkeypatch, capsys):
    text = ("<!-- docs-test -->\n```bash\n"
            "python run.py dataset create a.hdf5 A 1   # fine\n"
            "python run.py dataset info missing.hdf5\n```\n"
            "<!-- docs-test exit=1 -->\n```bash\n.venv/bin/python run.py dataset info missing.hdf5\n```\n"
            "```bash\npython run.py not-marked\n```\n")
    blocks = parse_blocks(text)
    assert [len(b.lines) for b in blocks] == [2, 1] and blocks[1].exit_code == 1
    session = _session(tmp_path, monkeypatch)
    with pytest.raises(AssertionError, match="missing.hdf5"):
        run_block(blocks[0], session, capsys)
    run_block(blocks[1], session, capsys)
    with pytest.raises(AssertionError, match="only 'python run.py"):
        run_block(parse_blocks("<!-- docs-test -->\n```bash\nrm -rf /\n```\n")[0], session, capsys)


def test_shrink_keeps_the_documented_files_and_options():
    argv = ["train", "m.keras", "o.keras", "t.hdf5", "t.hdf5", "--patch", "1", "256", "256", "--lr", "0.01"]
    assert shrink(argv, "tiny") == argv + ["--steps-per-epoch", "2", "--epochs", "1", "--validation-steps",
                                           "1", "--patch", "1", "32", "32", "--batch-size", "2"]
    no_validation = argv + ["--validation-steps", "0"]
    assert shrink(no_validation, "short") == no_validation + ["--steps-per-epoch", "2", "--epochs", "1"]
    legacy = ["--train-model", "a.h5", "b.h5", "d.hdf5", "d.hdf5", "Dice", "1", "128", "128", "128",
              "192", "32", "64"]
    assert shrink(legacy, "tiny")[6:] == ["2", "4", "32", "32", "2", "1", "1"]
    assert shrink(legacy, "short")[6:] == ["1", "128", "128", "128", "2", "1", "1"]
