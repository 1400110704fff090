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

# Boson AI's Higgs audio tokenizer blog (boson-ai/higgs-audio, tech_blogs/TOKENIZER_BLOG.md; read from the copy in
# the zixin-gao/higgs-audio fork at commit 851208c): the rows of the codecs bench runs, as the tables print them.
HIGGS_BLOG_STFT = PublishedBlock(
    source="Higgs audio tokenizer blog (Boson AI 2025, boson-ai/higgs-audio tech_blogs/TOKENIZER_BLOG.md), "
           "'Acoustic Evaluation' table",
    note=("STFT distance (lower is better) on Boson's AudioTokenBench: 1,000 10 s clips each of speech (DAPS), sound "
          "events (AudioSet), music (MUSDB) and 150 30 s audiophile clips; 16 kHz outputs upsampled to 24 kHz. "
          "kbps as the authors computed it from the checkpoints; evaluated by the Higgs authors."),
    columns=("codec", "kbps", "frames/s", "speech", "sound event", "music", "audiophile"),
    rows=(
        ("Encodec 24 kHz", 24, 75, 1.96, 2.65, 2.52, 2.30),
        ("DAC 24 kHz", 24, 75, 1.13, 1.45, 1.34, 1.62),
        ("WavTokenizer (medium music/audio)", 0.9, 75, 1.93, 2.44, 2.17, 2.15),
        ("WavTokenizer (large speech)", 0.9, 75, 1.78, 2.47, 2.42, 2.47),
        ("SemantiCodec", 1.4, 50, 3.05, 3.28, 3.24, 3.18),
        ("Mimi", 4.4, 12.5, 1.77, 2.40, 2.30, 2.15),
        ("X-Codec (general)", 4, 50, 2.95, 3.16, 3.00, 3.03),
        ("X-Codec2", 0.8, 50, 3.06, 3.72, 3.62, 3.64),
        ("Higgs audio v2 tokenizer", 2, 25, 1.62, 2.03, 1.85, 1.80),
    ),
)

HIGGS_BLOG_SEEDTTS = PublishedBlock(
    source="Higgs audio tokenizer blog (Boson AI 2025, boson-ai/higgs-audio tech_blogs/TOKENIZER_BLOG.md), "
           "'Semantic Evaluation' table",
    note=("Seed-TTS eval targets reconstructed by each codec: WER % and speaker similarity (WavLM-large) to the "
          "prompt, English and Chinese; evaluated by the Higgs authors."),
    columns=("codec", "kbps", "en WER %", "en SIM", "zh WER %", "zh SIM"),
    rows=(
        ("SemantiCodec", 1.4, 3.46, 0.56, 2.18, 0.60),
        ("Mimi", 4.4, 2.35, 0.70, 1.48, 0.72),
        ("X-Codec", 4.0, 2.68, 0.63, 1.66, 0.66),
        ("X-Codec2", 0.8, 2.74, 0.62, 1.91, 0.67),
        ("Higgs audio v2 tokenizer", 2.0, 2.52, 0.67, 1.48, 0.71),
    ),
)

BLOCKS = (SEMANTICODEC_PAPER, XCODEC2_LIBRISPEECH, HIGGS_BLOG_STFT, HIGGS_BLOG_SEEDTTS)


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
