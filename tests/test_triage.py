"""bot.triage: Indonesian normalisation, keyword scoring and category suggestions."""

from __future__ import annotations

import importlib.util
import random
import string
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bot.triage import Lexicon, Suggestion, TextNormalizer, Triage, load_lexicon
from tests.conftest import REPO_ROOT


@dataclass(frozen=True)
class Cat:
    key: str
    opd: str
    keywords: list[str] = field(default_factory=list)


# A small, fixed profile so these tests do not move when the city files are retuned.
CATS = [
    Cat("jalan_rusak", "PUPR", ["jalan rusak", "berlubang", "lubang", "aspal", "rusak"]),
    Cat("drainase", "PUPR", ["drainase", "selokan", "got", "banjir", "tersumbat", "meluap"]),
    Cat("sampah", "DLH", ["sampah", "bau", "menumpuk", "diangkut"]),
    Cat("lampu_jalan", "DISHUB", ["lampu jalan", "lampu", "padam", "gelap", "menyala"]),
    Cat("lalu_lintas", "DISHUB", ["macet", "parkir liar", "parkir", "lampu merah"]),
    Cat("ketertiban", "SATPOLPP", ["pedagang kaki lima", "berjualan", "bising", "preman"]),
    Cat("air_bersih", "PDAM", ["pdam", "air bersih", "air mati", "mengalir", "keruh"]),
    Cat("kependudukan", "DISDUKCAPIL", ["ktp", "kartu keluarga", "kk", "akta", "perekaman"]),
    Cat("bencana", "BPBD", ["bencana", "longsor", "gempa", "mengungsi"]),
    Cat("kebakaran", "DAMKAR", ["kebakaran", "terbakar", "api", "pemadam kebakaran"]),
    Cat("kesehatan", "DINKES", ["puskesmas", "dokter", "obat", "demam berdarah"]),
    Cat("sosial", "DINSOS", ["bantuan sosial", "dtks", "pkh", "miskin"]),
    Cat("pendidikan", "DISDIK", ["sekolah", "guru", "pungutan", "seragam"]),
    Cat("pohon_taman", "DLH", ["pohon", "dahan", "taman"]),
    Cat("lainnya", "DISKOMINFO", []),
]


@pytest.fixture(scope="module")
def normalizer() -> TextNormalizer:
    return TextNormalizer()


@pytest.fixture(scope="module")
def triage(normalizer: TextNormalizer) -> Triage:
    return Triage(CATS, normalizer=normalizer)


# Typical complaints, written for these tests in chat style (slang, typos, no punctuation).
TYPICAL = [
    ("jln depan pasar berlubang2 bgt, udh sebulan gk diperbaiki", "jalan_rusak"),
    ("aspalnya ngelupas, banyak lobang di jalan masuk kompleks", "jalan_rusak"),
    ("got di gang kami mampet, kalo hujan air meluap ke rumah warga", "drainase"),
    ("sampah numpuk di pinggir jalan udah 3 hari ga diangkut, baunya nyengat", "sampah"),
    ("pju depan masjid mati, jalanan gelap bgt kalo malam", "lampu_jalan"),
    ("lampu jln di lorong 5 padam sejak minggu lalu", "lampu_jalan"),
    ("parkir liar di bahu jalan bikin macet tiap sore", "lalu_lintas"),
    ("pkl jualan sampai ke badan jalan, mohon ditertibkan", "ketertiban"),
    ("air pdam gak ngalir udh 2 hari, kalau ngalir pun keruh", "air_bersih"),
    ("ektp sy blm jadi padahal udh perekaman dr bulan lalu", "kependudukan"),
    ("mau tanya syarat ganti kk dan akte kelahiran anak", "kependudukan"),
    ("tanah longsor nutup jalan, warga RT 3 mengungsi", "bencana"),
    ("ada rumah terbakar di jl. anoa!! api besar, tolong kirim damkar", "kebakaran"),
    ("puskesmas tutup di jam pelayanan, dokter tdk ada", "kesehatan"),
    ("nenek sy ga dapet pkh padahal sdh masuk dtks", "sosial"),
    ("sekolah minta pungutan uang seragam mahal sekali", "pendidikan"),
    ("dahan pohon besar di taman kota hampir patah, bahaya", "pohon_taman"),
]


@pytest.mark.parametrize(("text", "expected"), TYPICAL)
def test_typical_complaints_get_their_category(triage: Triage, text: str, expected: str) -> None:
    best = triage.best(text)
    assert best is not None, triage.explain(text)
    assert best.category == expected, triage.explain(text)
    assert best.opd == next(c.opd for c in CATS if c.key == expected)


# --------------------------------------------------------------------------- normalisation


def test_slang_and_abbreviations_are_normalised() -> None:
    # Keep stopwords here so the normalised negation is visible.
    norm = TextNormalizer(Lexicon(slang=load_lexicon().slang))
    words = norm.words("gk ga gak nggak tdk sdh blm yg dgn utk bgt jln jl.")
    assert words == [
        *["tidak"] * 5,
        *["sudah", "belum", "yang", "dengan", "untuk", "banget", "jalan", "jalan"],
    ]
    assert norm.words("pju di sini mati") == ["lampu", "jalan", "di", "sini", "mati"]
    assert norm.words("lampu jln") == ["lampu", "jalan"]


def test_reduplication_and_stretched_letters(normalizer: TextNormalizer) -> None:
    assert normalizer.words("lubang2 sampah2 lubang-lubang") == ["lubang", "sampah", "lubang"]
    assert normalizer.words("tolongggg banjirrr") == ["banjir"]  # "tolong" is a stopword


def test_urls_numbers_punctuation_and_masks_are_dropped(normalizer: TextNormalizer) -> None:
    text = "Lihat https://maps.app.goo.gl/xyz?g=1 atau www.contoh.id, NIK <NOMOR_ID> 081234 !!!"
    assert normalizer.words(text) == ["lihat", "nik"]


def test_stemming_reduces_affixes(normalizer: TextNormalizer) -> None:
    assert normalizer.stems("berlubang") == ["lubang"]
    assert normalizer.stems("tergenang genangan") == ["genang", "genang"]
    assert normalizer.stems("perbaikan diperbaiki") == ["baik", "baik"]
    # Lexicon fixes a Sastrawi error ("kerusakan" -> "rusa") ...
    assert normalizer.stems("kerusakan") == ["rusak"]
    # ... and keeps words whose root means something else ("keterangan" is not "terang").
    assert normalizer.stems("surat keterangan") == ["surat", "keterangan"]


def test_stem_cache_is_used() -> None:
    calls: list[str] = []

    def fake_stem(word: str) -> str:
        calls.append(word)
        return word.removeprefix("ber")

    norm = TextNormalizer(stem=fake_stem)
    assert norm.stems("berlubang berlubang berlubang") == ["lubang"] * 3
    assert calls == ["berlubang"]


def test_stemming_makes_inflected_text_match(triage: Triage) -> None:
    # keyword "lubang" matches "berlubang-lubang"; "terbakar" matches "kebakaran" via "bakar"
    assert triage.scores("jalannya berlubang-lubang")["jalan_rusak"] > 0
    best = triage.best("telah terjadi kebakaran hebat")
    assert best is not None and best.category == "kebakaran"


def test_lexicon_file_errors_name_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "lex.txt"
    bad.write_text("[slang]\ngk tidak\njln\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"lex.txt:3"):
        load_lexicon(bad)
    bad.write_text("gk tidak\n", encoding="utf-8")
    with pytest.raises(ValueError, match="outside"):
        load_lexicon(bad)


# --------------------------------------------------------------------------- scoring


def test_phrase_beats_its_single_words(triage: Triage) -> None:
    # "lampu jalan" is one phrase hit for street lights; "jalan" alone is not a road hit.
    sug = triage.suggest("lampu jalan rusak")
    assert sug[0].category == "lampu_jalan"
    hits = {(h.category, h.keyword) for h in triage.explain("lampu jalan rusak")}
    assert ("lampu_jalan", "lampu jalan") in hits
    assert ("lampu_jalan", "lampu") not in hits


def test_phrase_allows_one_word_gap(normalizer: TextNormalizer) -> None:
    tri = Triage([Cat("a", "A", ["jalan rusak"]), Cat("b", "B", ["rusak"])], normalizer=normalizer)
    assert tri.suggest("jalan depan rusak")[0].category == "a"
    assert tri.suggest("jalan depan pasar rusak")[0].category == "b"  # two words apart


def test_generic_words_weigh_less(normalizer: TextNormalizer) -> None:
    cats = [
        Cat("air_bersih", "PDAM", ["air", "pdam"]),
        Cat("drainase", "PUPR", ["air", "selokan"]),
        Cat("banjir", "BPBD", ["air"]),
    ]
    tri = Triage(cats, normalizer=normalizer)
    weights = {h.keyword: h.weight for h in tri.explain("air pdam selokan")}
    assert weights["air"] < weights["pdam"] == weights["selokan"] == 1.0


def test_confidence_ordering_and_range(triage: Triage) -> None:
    text = "lampu jalan mati dan jalannya juga berlubang, sampah menumpuk"
    sug = triage.suggest(text, k=5)
    confs = [s.confidence for s in sug]
    assert confs == sorted(confs, reverse=True)
    assert all(0 < c < 1 for c in confs) and sum(confs) <= 1
    assert len(triage.suggest(text, k=2)) == 2
    # more evidence for one category -> more confidence
    weak = triage.suggest("lampu")[0]
    strong = triage.suggest("lampu jalan padam, gelap sekali")[0]
    assert weak.category == strong.category == "lampu_jalan"
    assert strong.confidence > weak.confidence


def test_best_declines_off_topic_text(triage: Triage) -> None:
    for text in (
        "selamat pagi, apa kabar semuanya? semoga sehat selalu",
        "jadwal pertandingan sepak bola minggu depan jam berapa ya",
        "terima kasih min",
    ):
        assert triage.best(text) is None, text
        assert triage.suggest(text) == [Suggestion("lainnya", "DISKOMINFO", 0.0)]


def test_best_declines_one_weak_hit_among_many(normalizer: TextNormalizer) -> None:
    tri = Triage([Cat("a", "A", ["air"]), Cat("b", "B", ["air"])], normalizer=normalizer)
    assert tri.best("air") is None  # 50/50 and generic
    assert tri.suggest("air")[0].confidence < 0.4


def test_no_fallback_category_gives_empty_list(normalizer: TextNormalizer) -> None:
    tri = Triage(CATS[:3], normalizer=normalizer)
    assert tri.suggest("halo") == []
    assert tri.best("halo") is None


@pytest.mark.parametrize(
    "text",
    ["", "   ", "!!!???", "12345 678", "🙏🙏🙏", "asdkjh qwpoe zzzzzz", "<NOMOR_ID>", "x" * 10_000],
)
def test_empty_and_garbage_text(triage: Triage, text: str) -> None:
    assert triage.best(text) is None
    assert triage.suggest(text) == [Suggestion("lainnya", "DISKOMINFO", 0.0)]


def test_huge_text_is_handled_quickly(triage: Triage) -> None:
    rng = random.Random(7)
    garbage = "".join(rng.choice(string.printable) for _ in range(10_000))
    words = " ".join("".join(rng.choices(string.ascii_lowercase, k=8)) for _ in range(1_200))
    complaint = "sampah menumpuk di pasar, bau sekali. " * 300  # ~11k chars
    start = time.perf_counter()
    triage.suggest(garbage)
    triage.suggest(words)
    best = triage.best(complaint)
    assert time.perf_counter() - start < 5
    assert best is not None and best.category == "sampah"


def test_fast_after_warm_up(triage: Triage) -> None:
    texts = [t for t, _ in TYPICAL] * 10
    for t in texts:
        triage.suggest(t)
    start = time.perf_counter()
    for t in texts:
        triage.suggest(t)
    per_text = (time.perf_counter() - start) / len(texts)
    assert per_text < 1e-3


def test_keywords_that_normalise_to_nothing_are_reported(normalizer: TextNormalizer) -> None:
    tri = Triage([Cat("a", "A", ["yang", "sampah"])], normalizer=normalizer)
    assert tri.dropped_keywords == ["yang"]


# --------------------------------------------------------------------------- real profile


def _load_city_categories(name: str) -> list[Cat]:
    city_mod = pytest.importorskip("bot.city")
    city = city_mod.load_city(name)
    return [Cat(c.key, c.opd, list(c.keywords)) for c in city.categories]


@pytest.mark.parametrize("city", ["palu", "samarinda"])
def test_city_profiles_route_typical_complaints(normalizer: TextNormalizer, city: str) -> None:
    tri = Triage(_load_city_categories(city), normalizer=normalizer)
    assert tri.dropped_keywords == []
    wrong = [
        (t, exp, tri.best(t))
        for t, exp in TYPICAL
        if (tri.best(t) or Suggestion("", "", 0)).category != exp
    ]
    assert wrong == []


def test_bench_accuracy_on_bandung_stays_good(
    shared_data: Path, normalizer: TextNormalizer
) -> None:
    """Regression guard on real complaints (internal test set; see shared SOURCES.md)."""
    spec = importlib.util.spec_from_file_location("bench_triage", REPO_ROOT / "bench" / "triage.py")
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    sys.modules["bench_triage"] = bench
    spec.loader.exec_module(bench)
    rows = bench.load_rows(shared_data / "complaints")["bandung_lapor_4opd"]
    assert len(rows) == 837
    tri = Triage(_load_city_categories("palu"), normalizer=normalizer)

    def predict(text: str) -> str | None:
        top = tri.suggest(text, k=1)
        return top[0].opd if top and top[0].confidence > 0 else None

    ours = bench.evaluate(rows, predict).accuracy
    raw = bench.evaluate(rows, bench.raw_keyword_predictor(_load_city_categories("palu"))).accuracy
    assert ours >= 0.8
    assert ours > raw
