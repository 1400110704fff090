"""Published reference numbers, printed beside measured rows but never mixed with them.

Data typed in from the sources named in each block (see shared/specs/published.md for the notes).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PublishedBlock:
    source: str
    note: str
    columns: tuple[str, ...]
    rows: tuple[tuple, ...]


SEMANTICODEC_PAPER = PublishedBlock(
    source="SemantiCodec paper (Liu et al. 2024, arXiv 2405.00233v2), headline table",
    note=("ViSQOL-Avg over LibriTTS speech, MUSDB18 music and AudioSet sound; WER on LibriTTS (Whisper); Acc = mean "
          "HEAR-style accuracy. DAC rows were retrained at low bitrate by the paper's authors (not the released "
          "weights). v1 of the paper labels SemantiCodec 1.43/0.71 kbps (same models)."),
    columns=("codec", "kbps", "tokens/s", "ViSQOL-Avg", "WER %", "Acc %"),
    rows=(
        ("Encodec 24 kHz", 3.0, 300, 3.82, 3.7, 37.0),
        ("HiFi-Codec", 2.0, 200, 3.57, 3.6, 40.3),
        ("Encodec 24 kHz", 1.5, 150, 3.33, 5.0, 35.5),
        ("DAC (retrained)", 1.41, 141, 3.13, 5.0, 43.5),
        ("SemantiCodec", 1.40, 100, 3.81, 3.4, 52.5),
        ("DAC (retrained)", 0.78, 78, 2.82, 11.6, 43.0),
        ("SemantiCodec", 0.70, 50, 3.55, 5.1, 50.3),
        ("DAC (retrained)", 0.47, 47, 2.39, 28.2, 41.3),
        ("SemantiCodec", 0.35, 25, 3.17, 19.6, 46.1),
    ),
)

XCODEC2_LIBRISPEECH = PublishedBlock(
    source="X-codec2 paper, Table 1 (LibriSpeech test-clean)",
    note="Third-party evaluation; WER with the paper's own ASR.",
    columns=("codec", "kbps", "WER %"),
    rows=(
        ("SemantiCodec", 0.7, 6.89),
        ("Encodec", 1.5, 4.90),
        ("DAC (2 codebooks)", 1.0, 13.27),
        ("Mimi", 1.1, 2.96),
        ("BigCodec", 1.04, 2.76),
        ("X-codec2", 0.8, 2.47),
    ),
)

BLOCKS = (SEMANTICODEC_PAPER, XCODEC2_LIBRISPEECH)


def _cell(v) -> str:
    return f"{v:g}" if isinstance(v, (int, float)) else str(v)


def published_markdown() -> str:
    out = []
    for b in BLOCKS:
        lines = [f"#### Published: {b.source}", "", f"_{b.note}_", "",
                 "| " + " | ".join(b.columns) + " |", "|" + "|".join(["---"] * len(b.columns)) + "|"]
        lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in b.rows]
        out.append("\n".join(lines))
    return "\n\n".join(out) + "\n"


def published_latex() -> str:
    out = []
    for b in BLOCKS:
        spec = "l" + "r" * (len(b.columns) - 1)
        body = " \\\\\n".join(" & ".join(_tex(_cell(v)) for v in row) for row in b.rows)
        out.append(
            f"% Published: {b.source}\n\\begin{{table}}[t]\n\\centering\n\\small\n\\begin{{tabular}}{{{spec}}}\n\\toprule\n"
            + " & ".join(_tex(c) for c in b.columns) + " \\\\\n\\midrule\n" + body + " \\\\\n\\bottomrule\n"
            f"\\end{{tabular}}\n\\caption{{Published numbers: {_tex(b.source)}. {_tex(b.note)}}}\n\\end{{table}}\n")
    return "\n".join(out)


def _tex(text: str) -> str:
    for a, b in (("\\", "\\textbackslash{}"), ("&", "\\&"), ("%", "\\%"), ("_", "\\_"), ("#", "\\#")):
        text = text.replace(a, b)
    return text
