"""The catalogue: sectors, categories, agencies and municipalities, read from YAML.

The catalogue is configuration, not code: ``config/catalogue.yaml`` lists the
rubricator (sectors and their categories with deadlines and classifier keywords),
the responsible agencies and every municipality of the Republic of Dagestan.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from domain.places import PlaceMatcher, normalize

SECTOR_SLUGS: tuple[str, ...] = (
    "housing", "waste", "energy", "education", "health", "roads", "transport", "social", "other",
)
AGENCY_KINDS = frozenset({"regional", "municipal"})
MUNICIPALITY_KINDS = frozenset({"city_district", "municipal_district", "municipal_okrug"})
MIN_CATEGORIES = 3


def _pick(names: Mapping[str, str], lang: str) -> str:
    return names.get(lang) or names["ru"]


@dataclass(frozen=True, slots=True)
class Agency:
    """An organisation that answers complaints; ``kind`` is "regional" or "municipal"."""

    slug: str
    name: str
    short_name: str
    kind: str


@dataclass(frozen=True, slots=True)
class Category:
    """A rubric inside a sector, with its deadlines and classifier keyword stems.

    ``municipal``: the municipality's administration answers when the municipality is known.
    """

    slug: str
    sector: str
    names: Mapping[str, str]
    first_answer_hours: int
    resolution_days: int
    keywords: tuple[str, ...]
    municipal: bool

    def name(self, lang: str) -> str:
        """Name in ``lang``, falling back to Russian."""
        return _pick(self.names, lang)


@dataclass(frozen=True, slots=True)
class Sector:
    """A sector (ЖКХ, дороги, ...). ``keywords`` are the sector's own stems followed by
    those of its categories, without duplicates."""

    slug: str
    names: Mapping[str, str]
    agency: str
    categories: tuple[Category, ...]
    keywords: tuple[str, ...]

    def name(self, lang: str) -> str:
        """Name in ``lang``, falling back to Russian."""
        return _pick(self.names, lang)


@dataclass(frozen=True, slots=True)
class Municipality:
    """A city district, municipal district or municipal okrug with its administration."""

    slug: str
    names: Mapping[str, str]
    kind: str
    aliases: tuple[str, ...]
    agency: str

    def name(self, lang: str) -> str:
        """Name in ``lang``, falling back to Russian."""
        return _pick(self.names, lang)


class Catalogue:
    """The loaded catalogue. Lookups raise ``KeyError`` on unknown slugs."""

    def __init__(self, sectors: list[Sector], agencies: dict[str, Agency],
                 municipalities: list[Municipality], consent_version: str) -> None:
        self.sectors = sectors
        self.agencies = agencies
        self.municipalities = municipalities
        self.consent_version = consent_version
        self._sectors = {s.slug: s for s in sectors}
        self._categories = {(s.slug, c.slug): c for s in sectors for c in s.categories}
        self._municipalities = {m.slug: m for m in municipalities}
        self._places = PlaceMatcher((m, (*m.names.values(), *m.aliases)) for m in municipalities)

    def sector(self, slug: str) -> Sector:
        return self._sectors[slug]

    def category(self, sector_slug: str, category_slug: str) -> Category:
        """The category ``category_slug`` of sector ``sector_slug``; ``KeyError`` otherwise."""
        try:
            return self._categories[(sector_slug, category_slug)]
        except KeyError:
            raise KeyError(f"{sector_slug}/{category_slug}") from None

    def municipality(self, slug: str) -> Municipality:
        return self._municipalities[slug]

    def agency(self, slug: str) -> Agency:
        return self.agencies[slug]

    def responsible_agency(self, sector_slug: str, category_slug: str,
                           municipality_slug: str | None) -> Agency:
        """Who answers: the municipality's administration for a municipal category when the
        municipality is known, otherwise the sector's agency."""
        category = self.category(sector_slug, category_slug)
        if category.municipal and municipality_slug is not None:
            return self.agency(self.municipality(municipality_slug).agency)
        return self.agency(self.sector(sector_slug).agency)

    def find_municipality(self, text: str) -> Municipality | None:
        """The municipality named anywhere in free text, or ``None``.

        Case-insensitive, "ё" == "е", tolerant to Russian inflection ("в Махачкале",
        "Дербентского района"). The longest phrase wins ("Кизилюртовский район" is the
        district, "Кизилюрт" alone the city); on a tie, the one mentioned first. Street
        names are skipped: "ул. Буйнакского" is a street in Makhachkala, not a district.
        """
        return self._places.find(text)


# --- loading and validation -------------------------------------------------------------------


def _default_path() -> Path:
    # config/ sits next to domain/ both in the checkout and in site-packages; importing the
    # config package instead would run its wiring code.
    return Path(__file__).resolve().parent.parent / "config" / "catalogue.yaml"


def _names(raw: Any, where: str) -> dict[str, str]:
    if not isinstance(raw, dict) or not raw.get("ru") or not raw.get("en"):
        raise ValueError(f"{where}: 'names' must give both 'ru' and 'en'")
    return {str(k): str(v) for k, v in raw.items()}


def _keywords(raw: Any, where: str) -> tuple[str, ...]:
    words = tuple(dict.fromkeys(normalize(str(w)).strip() for w in raw or ()))
    bad = [w for w in words if not re.fullmatch(r"[a-zа-я0-9]+(?: [a-zа-я0-9]+)*", w)]
    if bad:
        raise ValueError(f"{where}: keywords must be word stems separated by single spaces, "
                         f"got {bad}")
    return words


def _unique(slug: Any, seen: set[str], what: str) -> str:
    if not isinstance(slug, str) or not re.fullmatch(r"[a-z][a-z0-9_]*", slug):
        raise ValueError(f"invalid {what} slug: {slug!r}")
    if slug in seen:
        raise ValueError(f"duplicate {what} slug: {slug!r}")
    seen.add(slug)
    return slug


def _agency(raw: Any, seen: set[str], kind: str) -> Agency:
    if not isinstance(raw, dict):
        raise ValueError(f"agency entry must be a mapping: {raw!r}")
    slug = _unique(raw.get("slug"), seen, "agency")
    kind = raw.get("kind", kind)
    if kind not in AGENCY_KINDS or not raw.get("name"):
        raise ValueError(f"agency {slug!r}: needs a name and a kind in {sorted(AGENCY_KINDS)}")
    return Agency(slug, str(raw["name"]), str(raw.get("short_name") or raw["name"]), kind)


def _category(raw: Any, sector: str, defaults: dict[str, Any], seen: set[str]) -> Category:
    if not isinstance(raw, dict):
        raise ValueError(f"sector {sector!r}: category entry must be a mapping")
    slug = _unique(raw.get("slug"), seen, f"category (sector {sector!r})")
    where = f"category {sector}/{slug}"
    hours = raw.get("first_answer_hours", defaults.get("first_answer_hours"))
    days = raw.get("resolution_days", defaults.get("resolution_days"))
    if not isinstance(hours, int) or not isinstance(days, int) or hours <= 0 or days <= 0:
        raise ValueError(f"{where}: first_answer_hours and resolution_days must be positive ints")
    return Category(slug, sector, _names(raw.get("names"), where), hours, days,
                    _keywords(raw.get("keywords"), where), bool(raw.get("municipal", False)))


def _sector(raw: Any, defaults: dict[str, Any], agencies: dict[str, Agency],
            seen: set[str]) -> Sector:
    if not isinstance(raw, dict):
        raise ValueError("sector entry must be a mapping")
    slug = _unique(raw.get("slug"), seen, "sector")
    if raw.get("agency") not in agencies:
        raise ValueError(f"sector {slug!r}: unknown agency {raw.get('agency')!r}")
    cat_seen: set[str] = set()
    cats = tuple(_category(c, slug, defaults, cat_seen) for c in raw.get("categories") or ())
    if len(cats) < MIN_CATEGORIES:
        raise ValueError(f"sector {slug!r}: needs at least {MIN_CATEGORIES} categories, "
                         f"has {len(cats)}")
    own = _keywords(raw.get("keywords"), f"sector {slug}")
    keywords = tuple(dict.fromkeys([*own, *(k for c in cats for k in c.keywords)]))
    return Sector(slug, _names(raw.get("names"), f"sector {slug}"), raw["agency"], cats, keywords)


def _municipality(raw: Any, agencies: dict[str, Agency], seen: set[str]) -> Municipality:
    if not isinstance(raw, dict):
        raise ValueError("municipality entry must be a mapping")
    slug = _unique(raw.get("slug"), seen, "municipality")
    if raw.get("kind") not in MUNICIPALITY_KINDS:
        raise ValueError(f"municipality {slug!r}: kind must be one of {sorted(MUNICIPALITY_KINDS)}")
    admin = raw.get("administration")
    if isinstance(admin, dict):  # the administration is declared inline
        agency = _agency(admin, set(agencies), "municipal")
        agencies[agency.slug] = agency
    elif admin not in agencies:
        raise ValueError(f"municipality {slug!r}: unknown administration agency {admin!r}")
    else:
        agency = agencies[admin]
    aliases = tuple(str(a) for a in raw.get("aliases") or ())
    return Municipality(slug, _names(raw.get("names"), f"municipality {slug}"), raw["kind"],
                        aliases, agency.slug)


def load_catalogue(path: str | Path | None = None) -> Catalogue:
    """Read and validate the catalogue (default: ``config/catalogue.yaml``).

    Raises ``ValueError`` with a readable message when the file is malformed: duplicate
    slugs, a sector with fewer than three categories, an unknown agency, a missing or
    misplaced fixed sector slug.
    """
    path = Path(path) if path is not None else _default_path()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{path}: the catalogue must be a mapping")
    try:
        return _build(data)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from exc


def _build(data: dict[str, Any]) -> Catalogue:
    defaults = data.get("defaults") or {}
    consent = data.get("consent_version")
    if not isinstance(consent, str) or not consent:
        raise ValueError("consent_version must be a non-empty string")
    seen: set[str] = set()
    agencies: dict[str, Agency] = {}
    for raw in data.get("agencies") or ():
        agency = _agency(raw, seen, "regional")
        agencies[agency.slug] = agency
    sector_seen: set[str] = set()
    sectors = [_sector(s, defaults, agencies, sector_seen) for s in data.get("sectors") or ()]
    slugs = tuple(s.slug for s in sectors)
    if slugs != SECTOR_SLUGS:
        raise ValueError(f"sectors must be exactly {list(SECTOR_SLUGS)} in this order, "
                         f"got {list(slugs)}")
    muni_seen: set[str] = set()
    municipalities = [_municipality(m, agencies, muni_seen)
                      for m in data.get("municipalities") or ()]
    return Catalogue(sectors, agencies, municipalities, consent)
