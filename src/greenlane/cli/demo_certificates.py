"""The demo's AZ -> RU certificates, in the JSON form, written out by the canonical writer.

Realistic content for the first corridor: five phytosanitary certificates for
fresh produce and one veterinary certificate, issued in Baku (UTC+4), crossing
at Samur / Yarag-Kazmalyar by refrigerated truck; and the day's two changes:
the persimmons withdrawn, the apples replaced for a new consignee.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

AQTA = "Food Safety Agency of the Republic of Azerbaijan"
EXPORTER = ("Frukt Treyd MMC", "Heydər Əliyev prospekti 15", "Bakı", "AZ")
IMPORTER = ("ООО «Фрукт Трейд»", "ул. Кировоградская, 15", "Москва", "RU")
NEW_IMPORTER = ("ООО «Зелёный Ряд»", "Варшавское шоссе, 170Г", "Москва", "RU")


@dataclass(frozen=True)
class Lot:
    number: str
    type_code: str
    issued: str
    description: str
    common_name: str
    scientific_name: str
    hs: str
    net_kg: str
    gross_kg: str
    packages: str
    package_type: str
    region: str
    truck: str
    seal: str
    intended_use: str = "Consumption"
    treatment: tuple[tuple[str, str, str | None], ...] = ()
    """IPPC treatment characteristics: (acronym, description, measure with its unit)."""
    additional_declaration: str | None = None
    consignee: tuple[str, str, str, str] = IMPORTER
    """Name, address line, city and country of the importer."""


LOTS = (
    Lot(
        "AZ-2026-000123",
        "851",
        "2026-09-14T08:30:00+04:00",
        "Fresh tomatoes",
        "Tomato",
        "Solanum lycopersicum",
        "070200",
        "20000",
        "21600",
        "2400",
        "CT",
        "Masallı",
        "10-AB-123",
        "AZ1234567",
        additional_declaration="The consignment is free from Tuta absoluta and ToBRFV.",
    ),
    Lot(
        "AZ-2026-000124",
        "851",
        "2026-11-02T09:10:00+04:00",
        "Fresh persimmons",
        "Persimmon",
        "Diospyros kaki",
        "081070",
        "18500",
        "19900",
        "3700",
        "CT",
        "Göyçay",
        "90-GK-417",
        "AZ1234588",
    ),
    Lot(
        "AZ-2026-000125",
        "851",
        "2026-10-20T11:45:00+04:00",
        "Hazelnuts, shelled",
        "Hazelnut",
        "Corylus avellana",
        "080222",
        "21000",
        "21420",
        "840",
        "BG",
        "Qəbələ",
        "77-QB-902",
        "AZ1234601",
        intended_use="Processing",
        treatment=(
            ("TTL1", "Fumigation", None),
            ("TTCH", "Phosphine", None),
            ("TTCO", "Concentration", "2 A93"),
            ("TTAI", "Exposure 72 h at 20 °C", None),
        ),
    ),
    Lot(
        "AZ-2026-000126",
        "851",
        "2026-10-05T07:55:00+04:00",
        "Fresh apples",
        "Apple",
        "Malus domestica",
        "080810",
        "19800",
        "21300",
        "1650",
        "CT",
        "Quba",
        "35-QB-330",
        "AZ1234615",
    ),
    Lot(
        "AZ-2026-000127",
        "851",
        "2026-11-12T10:20:00+04:00",
        "Fresh pomegranates",
        "Pomegranate",
        "Punica granatum",
        "081090",
        "17600",
        "18950",
        "2200",
        "CT",
        "Göyçay",
        "90-GY-118",
        "AZ1234642",
    ),
    Lot(
        "AZ-2026-V00031",
        "853",
        "2026-11-20T06:40:00+04:00",
        "Frozen lamb carcasses",
        "Sheep meat",
        "Ovis aries",
        "020442",
        "15000",
        "15900",
        "600",
        "CT",
        "Şamaxı",
        "10-VT-031",
        "AZ1234660",
        intended_use="Human consumption",
    ),
)


WITHDRAWN = "AZ-2026-000124"
WITHDRAWAL_REASON = "Issued in error: the persimmons were not loaded and will not travel."
REPLACED = "AZ-2026-000126"
REPLACEMENT_REASON = "Change of consignee: the apples are sold on to another importer in Moscow."
REPLACEMENT = replace(
    next(lot for lot in LOTS if lot.number == REPLACED),
    number="AZ-2026-000128",
    issued="2026-10-05T15:20:00+04:00",
    consignee=NEW_IMPORTER,
)
"""The apples' new certificate: a number of its own, the new consignee, issued the same day."""


def goods(lot: Lot) -> str:
    """A short label for a lot, as an officer would say it: "Fresh tomatoes, 20 t"."""
    return f"{lot.description}, {int(lot.net_kg) / 1000:g} t"


def _party(name: str, line: str, city: str, country: str) -> dict[str, Any]:
    return {
        "Name": name,
        "SpecifiedSPSAddress": {"LineOne": line, "CityName": city, "CountryID": country},
    }


def _country(code: str, name: str) -> dict[str, Any]:
    return {"ID": code, "Name": [name]}


def _characteristic(acronym: str, description: str, measure: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {"Description": [acronym, description]}
    if measure:
        value, unit = measure.split()
        out["ValueMeasure"] = {"value": value, "@unitCode": unit}
    return out


def signatory_of(veterinary: bool) -> str:
    """The officer who signs the demo certificates: personal data, kept out of the evidence log."""
    return "Rashad Aliyev" if veterinary else "Aysel Mammadova"


def certificate(lot: Lot) -> dict[str, Any]:
    """One certificate in the JSON form."""
    veterinary = lot.type_code == "853"
    notes = [{"Subject": "SPSFL", "Content": ["1"]}]
    if lot.additional_declaration:
        notes.append({"Subject": "ADEDL", "Content": [lot.additional_declaration]})
    line: dict[str, Any] = {
        "SequenceNumeric": "1",
        "Description": [lot.description],
        "CommonName": [lot.common_name],
        "ScientificName": [lot.scientific_name],
        "IntendedUse": [lot.intended_use],
        "NetWeightMeasure": {"value": lot.net_kg, "@unitCode": "KGM"},
        "GrossWeightMeasure": {"value": lot.gross_kg, "@unitCode": "KGM"},
        "ApplicableSPSClassification": [{"SystemName": ["HS"], "ClassCode": lot.hs}],
        "PhysicalSPSPackage": [
            {"LevelCode": "4", "TypeCode": lot.package_type, "ItemQuantity": lot.packages}
        ],
        "OriginSPSCountry": [
            {
                **_country("AZ", "Azerbaijan"),
                "SubordinateSPSCountrySubDivision": [{"Name": [lot.region]}],
            }
        ],
    }
    if lot.treatment:
        line["AppliedSPSProcess"] = [
            {
                "TypeCode": "ZZZ",  # UNECE 7187 "mutually defined": the IPPC acronyms say what
                "ApplicableSPSProcessCharacteristic": [
                    _characteristic(acronym, description, measure)
                    for acronym, description, measure in lot.treatment
                ],
            }
        ]
    issuer = "State Veterinary Control Service, " + AQTA if veterinary else AQTA
    signatory = signatory_of(veterinary)
    return {
        "SPSCertificate": {
            "SPSExchangedDocument": {
                "Name": ["Veterinary Certificate" if veterinary else "Phytosanitary Certificate"],
                "ID": lot.number,
                "TypeCode": lot.type_code,
                "StatusCode": "70",
                "IssueDateTime": {"DateTimeString": lot.issued},
                "IssuerSPSParty": {"Name": issuer},
                "IncludedSPSNote": notes,
                "SignatorySPSAuthentication": [
                    {
                        "ActualDateTime": {"DateTimeString": lot.issued},
                        "IssueSPSLocation": {"ID": "AZBAK", "Name": ["Baku"]},
                        "ProviderSPSParty": {
                            "Name": issuer,
                            "SpecifiedSPSPerson": {"Name": signatory},
                        },
                    }
                ],
            },
            "SPSConsignment": {
                "ConsignorSPSParty": _party(*EXPORTER),
                "ConsigneeSPSParty": _party(*lot.consignee),
                "ExportSPSCountry": _country("AZ", "Azerbaijan"),
                "ImportSPSCountry": _country("RU", "Russian Federation"),
                "UnloadingBaseportSPSLocation": {"ID": "RUMOW", "Name": ["Moscow"]},
                "ExaminationSPSEvent": {"OccurrenceSPSLocation": {"ID": "AZBAK", "Name": ["Baku"]}},
                "MainCarriageSPSTransportMovement": [
                    {"ModeCode": "3", "UsedSPSTransportMeans": {"Name": f"Truck {lot.truck}"}}
                ],
                "UtilizedSPSTransportEquipment": [
                    {"ID": lot.truck, "AffixedSPSSeal": [{"ID": lot.seal}]}
                ],
                "IncludedSPSConsignmentItem": [{"IncludedSPSTradeLineItem": [line]}],
            },
        }
    }
