"""The catalogue YAML and the Catalogue lookups: slugs, agencies, routing, place names."""

from pathlib import Path

import pytest
import yaml

from domain.catalogue import SECTOR_SLUGS, Catalogue, load_catalogue

SHIPPED = Path(__file__).resolve().parents[2] / "config" / "catalogue.yaml"


@pytest.fixture(scope="module")
def cat() -> Catalogue:
    return load_catalogue()


def test_sector_slugs_are_fixed_and_ordered(cat: Catalogue) -> None:
    assert [s.slug for s in cat.sectors] == [
        "housing", "waste", "energy", "education", "health", "roads", "transport", "social",
        "other",
    ]
    assert cat.sector("housing").name("ru") == "ЖКХ"
    assert cat.sector("waste").name("ru") == "ТКО"
    assert cat.sector("roads").name("en") == "Roads"
    assert cat.sector("roads").name("de") == "Дороги"  # falls back to Russian


def test_every_sector_has_enough_categories_with_names_and_keywords(cat: Catalogue) -> None:
    for sector in cat.sectors:
        assert len(sector.categories) >= 3, sector.slug
        for category in sector.categories:
            assert category.sector == sector.slug
            assert category.name("ru") and category.name("en")
            if category.slug != "other_issue":
                assert 5 <= len(category.keywords) <= 15, category.slug
            assert all(k == k.lower() and "  " not in k for k in category.keywords)
        assert set(sector.keywords) >= {k for c in sector.categories for k in c.keywords}


def test_consent_version(cat: Catalogue) -> None:
    assert cat.consent_version == "2026-11"


def test_keywords_are_normalized_stems(cat: Catalogue) -> None:
    assert "без вод" in cat.category("housing", "no_water").keywords
    assert "детск сад" in cat.category("education", "kindergarten_queue").keywords
    assert "ям" in cat.sector("roads").keywords  # the sector carries its categories' stems
    assert cat.sector("roads").keywords[0] == "дорог"  # its own stems come first


@pytest.mark.parametrize(("sector", "short_name"), [
    ("housing", "Минэнерго и ЖКХ РД"),
    ("energy", "Минэнерго и ЖКХ РД"),
    ("waste", "Минприроды РД"),
    ("education", "Минобрнауки РД"),
    ("health", "Минздрав РД"),
    ("roads", "Минтранс РД"),
    ("transport", "Минтранс РД"),
    ("social", "Минтруд РД"),
    ("other", "ЦУР РД"),
])
def test_sector_agencies(cat: Catalogue, sector: str, short_name: str) -> None:
    agency = cat.agency(cat.sector(sector).agency)
    assert agency.short_name == short_name
    assert agency.kind == "regional"


def test_deadlines_defaults_and_overrides(cat: Catalogue) -> None:
    lift = cat.category("housing", "lift")
    assert (lift.first_answer_hours, lift.resolution_days) == (4, 5)
    management = cat.category("housing", "management_company")
    assert (management.first_answer_hours, management.resolution_days) == (8, 10)
    for sector, slug in [("housing", "no_water"), ("housing", "heating"),
                         ("energy", "power_outage")]:
        c = cat.category(sector, slug)
        assert (c.first_answer_hours, c.resolution_days) == (2, 3)
    ambulance = cat.category("health", "ambulance")
    assert (ambulance.first_answer_hours, ambulance.resolution_days) == (1, 1)


def test_lookups_raise_key_error(cat: Catalogue) -> None:
    with pytest.raises(KeyError):
        cat.sector("parking")
    with pytest.raises(KeyError):
        cat.category("roads", "no_water")  # exists, but in another sector
    with pytest.raises(KeyError):
        cat.municipality("moscow")
    with pytest.raises(KeyError):
        cat.agency("nobody")
    assert cat.category("housing", "no_water").slug == "no_water"


def test_all_municipalities_with_their_administrations(cat: Catalogue) -> None:
    assert len(cat.municipalities) == 52
    cities = [m for m in cat.municipalities if m.kind == "city_district"]
    assert len(cities) == 10
    assert {m.slug for m in cities} >= {"makhachkala", "derbent", "kaspiysk", "kizilyurt"}
    for m in cat.municipalities:
        admin = cat.agency(m.agency)
        assert admin.kind == "municipal"
        assert admin.name.startswith("Администрация")
        assert m.name("ru") and m.name("en").isascii()
    assert cat.agency(cat.municipality("makhachkala").agency).name == "Администрация г. Махачкалы"


def test_responsible_agency(cat: Catalogue) -> None:
    # municipal category with a known municipality: the local administration
    assert cat.responsible_agency("housing", "yard", "makhachkala").slug == "adm_makhachkala"
    assert cat.responsible_agency("roads", "potholes", "derbentsky").slug == "adm_derbentsky"
    # municipal category, municipality unknown: the sector's ministry
    assert cat.responsible_agency("housing", "yard", None).short_name == "Минэнерго и ЖКХ РД"
    # regional category: the ministry even when the municipality is known
    agency = cat.responsible_agency("health", "ambulance", "makhachkala")
    assert agency.short_name == "Минздрав РД"
    with pytest.raises(KeyError):
        cat.responsible_agency("housing", "yard", "atlantis")


@pytest.mark.parametrize(("text", "slug"), [
    ("В Махачкале на ул. Гамидова нет воды", "makhachkala"),
    ("мхч, Ленинский район, яма", "makhachkala"),
    ("живу в каспийске, не вывозят мусор", "kaspiysk"),
    ("Каспийск", "kaspiysk"),
    ("село Белиджи Дербентского района", "derbentsky"),
    ("Дербент, старый город", "derbent"),
    ("в Хасавюртовском районе нет газа", "khasavyurtovsky"),
    ("Хасавюрт, автобусы не ходят", "khasavyurt"),
    ("Буйнакск", "buynaksk"),
    ("в Буйнакском р-не отключили свет", "buynaksky"),
    ("КИЗЛЯР без света", "kizlyar"),
    ("Кизлярский район, Тарумовка рядом", "kizlyarsky"),
    ("г. Кизилюрт", "kizilyurt"),
    ("Кизилюртовский район, село Султанянгиюрт", "kizilyurtovsky"),
    ("в Дагестанских Огнях нет света", "dagestanskiye_ogni"),
    ("Южно-Сухокумске холодно в школе", "yuzhno_sukhokumsk"),
    ("под Избербашем свалка", "izberbash"),
    ("Карабудахкент, детский сад", "karabudakhkentsky"),
    ("в Карабудахкентском районе", "karabudakhkentsky"),
    ("С.Стальский район, Касумкент", "suleyman_stalsky"),
    ("Бежтинский участок", "bezhtinsky"),
    ("в Кумухе нет врача", "laksky"),
    ("Ногайский район, Терекли-Мектеб", "nogaysky"),
    ("ТЁМНО на улицах Избербаша", "izberbash"),
    ("Makhachkala, no water", "makhachkala"),
    # a street named after a person is not the district; the city still counts
    ("Махачкала, ул. Буйнакского 5, течёт крыша", "makhachkala"),
    ("пр. Казбекова, Махачкала", "makhachkala"),
    # the more specific (longer) phrase wins
    ("Дербентский район, рядом с Дербентом", "derbentsky"),
])
def test_find_municipality(cat: Catalogue, text: str, slug: str) -> None:
    found = cat.find_municipality(text)
    assert found is not None, text
    assert found.slug == slug


@pytest.mark.parametrize("text", [
    "мой дом без воды",
    "яма на дороге возле школы",
    "огни на улице не горят",
    "каспийское море загрязнено",
    "мусор на пляже в Каспийском море",
    "стальной трубы прорвало",
    "Сулейман Магомедов, пенсия не пришла",
    "на улице Буйнакского нет освещения",
    "автобус не ходит уже неделю",
    "карта не принимается в маршрутке",
    "",
])
def test_find_municipality_negatives(cat: Catalogue, text: str) -> None:
    assert cat.find_municipality(text) is None


def test_every_municipality_is_found_by_its_own_names(cat: Catalogue) -> None:
    for m in cat.municipalities:
        for phrase in (m.name("ru"), m.name("en"), *m.aliases):
            found = cat.find_municipality(f"пишу из {phrase}")
            assert found is not None and found.slug == m.slug, phrase


def test_keywords_are_not_place_names(cat: Catalogue) -> None:
    for sector in cat.sectors:
        assert cat.find_municipality(" ".join(sector.keywords)) is None, sector.slug


# --- validation of a broken catalogue -------------------------------------------------------


def _write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "catalogue.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture
def raw() -> dict:
    return yaml.safe_load(SHIPPED.read_text(encoding="utf-8"))


def test_a_valid_copy_loads_from_any_path(raw: dict, tmp_path: Path) -> None:
    copy = load_catalogue(str(_write(tmp_path, raw)))
    assert [s.slug for s in copy.sectors] == list(SECTOR_SLUGS)
    assert len(copy.municipalities) == len(load_catalogue().municipalities)


def test_missing_sector(raw: dict, tmp_path: Path) -> None:
    raw["sectors"] = [s for s in raw["sectors"] if s["slug"] != "health"]
    with pytest.raises(ValueError, match="sectors must be exactly"):
        load_catalogue(_write(tmp_path, raw))


def test_sectors_out_of_order(raw: dict, tmp_path: Path) -> None:
    raw["sectors"][0], raw["sectors"][1] = raw["sectors"][1], raw["sectors"][0]
    with pytest.raises(ValueError, match="in this order"):
        load_catalogue(_write(tmp_path, raw))


def test_too_few_categories(raw: dict, tmp_path: Path) -> None:
    raw["sectors"][2]["categories"] = raw["sectors"][2]["categories"][:2]
    with pytest.raises(ValueError, match="'energy': needs at least 3 categories"):
        load_catalogue(_write(tmp_path, raw))


def test_duplicate_category_slug(raw: dict, tmp_path: Path) -> None:
    cats = raw["sectors"][0]["categories"]
    cats[1]["slug"] = cats[0]["slug"]
    with pytest.raises(ValueError, match="duplicate category"):
        load_catalogue(_write(tmp_path, raw))


def test_duplicate_municipality_slug(raw: dict, tmp_path: Path) -> None:
    raw["municipalities"][1]["slug"] = raw["municipalities"][0]["slug"]
    with pytest.raises(ValueError, match="duplicate municipality slug"):
        load_catalogue(_write(tmp_path, raw))


def test_duplicate_agency_slug(raw: dict, tmp_path: Path) -> None:
    raw["municipalities"][0]["administration"]["slug"] = "minzdrav"
    with pytest.raises(ValueError, match="duplicate agency slug: 'minzdrav'"):
        load_catalogue(_write(tmp_path, raw))


def test_unknown_sector_agency(raw: dict, tmp_path: Path) -> None:
    raw["sectors"][4]["agency"] = "minzdrav_typo"
    with pytest.raises(ValueError, match="sector 'health': unknown agency 'minzdrav_typo'"):
        load_catalogue(_write(tmp_path, raw))


def test_unknown_municipality_kind(raw: dict, tmp_path: Path) -> None:
    raw["municipalities"][0]["kind"] = "village"
    with pytest.raises(ValueError, match="kind must be one of"):
        load_catalogue(_write(tmp_path, raw))


def test_keyword_with_punctuation(raw: dict, tmp_path: Path) -> None:
    raw["sectors"][0]["categories"][0]["keywords"].append("нет воды!")
    with pytest.raises(ValueError, match="keywords must be word stems"):
        load_catalogue(_write(tmp_path, raw))


def test_missing_english_name(raw: dict, tmp_path: Path) -> None:
    del raw["sectors"][5]["categories"][0]["names"]["en"]
    with pytest.raises(ValueError, match="category roads/potholes: 'names' must give both"):
        load_catalogue(_write(tmp_path, raw))


def test_not_yaml(tmp_path: Path) -> None:
    path = tmp_path / "catalogue.yaml"
    path.write_text("sectors: [housing\n  - : :", encoding="utf-8")
    with pytest.raises(ValueError, match="not valid YAML"):
        load_catalogue(path)


def test_missing_consent_version(raw: dict, tmp_path: Path) -> None:
    del raw["consent_version"]
    with pytest.raises(ValueError, match="consent_version"):
        load_catalogue(_write(tmp_path, raw))
