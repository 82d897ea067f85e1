"""ISO 3166-1 countries: the codes a person's ``nationality`` is recorded with.

Generated from pycountry 26.2.16 (the Debian iso-codes data, ISO 3166-1: 249 countries) with
the es-MX names of the Unicode CLDR (Babel 2.18); regenerate rather than edit by hand. The
English name is the fallback of a country without a Spanish one.

Besides the 249 countries, ``XXA`` records a stateless person (*apátrida*): the code ICAO
Doc 9303 reserves for it (ISO 3166-1 leaves ``XA``–``XZ`` to user assignment). ``None`` is
a nationality not recorded (S.I.), never a country.
"""

from __future__ import annotations

import unicodedata
from typing import NamedTuple


class Country(NamedTuple):
    alpha_3: str
    alpha_2: str
    name_es: str
    name_en: str


MEXICO = "MEX"
STATELESS = "XXA"
STATELESS_LABEL = "Apátrida"

# (alpha-3, alpha-2, es-MX name, English name), by alpha-3.
ISO_3166_1: tuple[Country, ...] = (
    Country("ABW", "AW", "Aruba", "Aruba"),
    Country("AFG", "AF", "Afganistán", "Afghanistan"),
    Country("AGO", "AO", "Angola", "Angola"),
    Country("AIA", "AI", "Anguila", "Anguilla"),
    Country("ALA", "AX", "Islas Åland", "Åland Islands"),
    Country("ALB", "AL", "Albania", "Albania"),
    Country("AND", "AD", "Andorra", "Andorra"),
    Country("ARE", "AE", "Emiratos Árabes Unidos", "United Arab Emirates"),
    Country("ARG", "AR", "Argentina", "Argentina"),
    Country("ARM", "AM", "Armenia", "Armenia"),
    Country("ASM", "AS", "Samoa Americana", "American Samoa"),
    Country("ATA", "AQ", "Antártida", "Antarctica"),
    Country("ATF", "TF", "Territorios Australes Franceses", "French Southern Territories"),
    Country("ATG", "AG", "Antigua y Barbuda", "Antigua and Barbuda"),
    Country("AUS", "AU", "Australia", "Australia"),
    Country("AUT", "AT", "Austria", "Austria"),
    Country("AZE", "AZ", "Azerbaiyán", "Azerbaijan"),
    Country("BDI", "BI", "Burundi", "Burundi"),
    Country("BEL", "BE", "Bélgica", "Belgium"),
    Country("BEN", "BJ", "Benín", "Benin"),
    Country("BES", "BQ", "Caribe neerlandés", "Bonaire, Sint Eustatius and Saba"),
    Country("BFA", "BF", "Burkina Faso", "Burkina Faso"),
    Country("BGD", "BD", "Bangladés", "Bangladesh"),
    Country("BGR", "BG", "Bulgaria", "Bulgaria"),
    Country("BHR", "BH", "Baréin", "Bahrain"),
    Country("BHS", "BS", "Bahamas", "Bahamas"),
    Country("BIH", "BA", "Bosnia y Herzegovina", "Bosnia and Herzegovina"),
    Country("BLM", "BL", "San Bartolomé", "Saint Barthélemy"),
    Country("BLR", "BY", "Bielorrusia", "Belarus"),
    Country("BLZ", "BZ", "Belice", "Belize"),
    Country("BMU", "BM", "Bermudas", "Bermuda"),
    Country("BOL", "BO", "Bolivia", "Bolivia, Plurinational State of"),
    Country("BRA", "BR", "Brasil", "Brazil"),
    Country("BRB", "BB", "Barbados", "Barbados"),
    Country("BRN", "BN", "Brunéi", "Brunei Darussalam"),
    Country("BTN", "BT", "Bután", "Bhutan"),
    Country("BVT", "BV", "Isla Bouvet", "Bouvet Island"),
    Country("BWA", "BW", "Botsuana", "Botswana"),
    Country("CAF", "CF", "República Centroafricana", "Central African Republic"),
    Country("CAN", "CA", "Canadá", "Canada"),
    Country("CCK", "CC", "Islas Cocos", "Cocos (Keeling) Islands"),
    Country("CHE", "CH", "Suiza", "Switzerland"),
    Country("CHL", "CL", "Chile", "Chile"),
    Country("CHN", "CN", "China", "China"),
    Country("CIV", "CI", "Côte d’Ivoire", "Côte d'Ivoire"),
    Country("CMR", "CM", "Camerún", "Cameroon"),
    Country(
        "COD", "CD", "República Democrática del Congo", "Congo, The Democratic Republic of the"
    ),
    Country("COG", "CG", "República del Congo", "Congo"),
    Country("COK", "CK", "Islas Cook", "Cook Islands"),
    Country("COL", "CO", "Colombia", "Colombia"),
    Country("COM", "KM", "Comoras", "Comoros"),
    Country("CPV", "CV", "Cabo Verde", "Cabo Verde"),
    Country("CRI", "CR", "Costa Rica", "Costa Rica"),
    Country("CUB", "CU", "Cuba", "Cuba"),
    Country("CUW", "CW", "Curazao", "Curaçao"),
    Country("CXR", "CX", "Isla de Navidad", "Christmas Island"),
    Country("CYM", "KY", "Islas Caimán", "Cayman Islands"),
    Country("CYP", "CY", "Chipre", "Cyprus"),
    Country("CZE", "CZ", "Chequia", "Czechia"),
    Country("DEU", "DE", "Alemania", "Germany"),
    Country("DJI", "DJ", "Yibuti", "Djibouti"),
    Country("DMA", "DM", "Dominica", "Dominica"),
    Country("DNK", "DK", "Dinamarca", "Denmark"),
    Country("DOM", "DO", "República Dominicana", "Dominican Republic"),
    Country("DZA", "DZ", "Argelia", "Algeria"),
    Country("ECU", "EC", "Ecuador", "Ecuador"),
    Country("EGY", "EG", "Egipto", "Egypt"),
    Country("ERI", "ER", "Eritrea", "Eritrea"),
    Country("ESH", "EH", "Sáhara Occidental", "Western Sahara"),
    Country("ESP", "ES", "España", "Spain"),
    Country("EST", "EE", "Estonia", "Estonia"),
    Country("ETH", "ET", "Etiopía", "Ethiopia"),
    Country("FIN", "FI", "Finlandia", "Finland"),
    Country("FJI", "FJ", "Fiyi", "Fiji"),
    Country("FLK", "FK", "Islas Malvinas", "Falkland Islands (Malvinas)"),
    Country("FRA", "FR", "Francia", "France"),
    Country("FRO", "FO", "Islas Feroe", "Faroe Islands"),
    Country("FSM", "FM", "Micronesia", "Micronesia, Federated States of"),
    Country("GAB", "GA", "Gabón", "Gabon"),
    Country("GBR", "GB", "Reino Unido", "United Kingdom"),
    Country("GEO", "GE", "Georgia", "Georgia"),
    Country("GGY", "GG", "Guernsey", "Guernsey"),
    Country("GHA", "GH", "Ghana", "Ghana"),
    Country("GIB", "GI", "Gibraltar", "Gibraltar"),
    Country("GIN", "GN", "Guinea", "Guinea"),
    Country("GLP", "GP", "Guadalupe", "Guadeloupe"),
    Country("GMB", "GM", "Gambia", "Gambia"),
    Country("GNB", "GW", "Guinea-Bisáu", "Guinea-Bissau"),
    Country("GNQ", "GQ", "Guinea Ecuatorial", "Equatorial Guinea"),
    Country("GRC", "GR", "Grecia", "Greece"),
    Country("GRD", "GD", "Granada", "Grenada"),
    Country("GRL", "GL", "Groenlandia", "Greenland"),
    Country("GTM", "GT", "Guatemala", "Guatemala"),
    Country("GUF", "GF", "Guayana Francesa", "French Guiana"),
    Country("GUM", "GU", "Guam", "Guam"),
    Country("GUY", "GY", "Guyana", "Guyana"),
    Country("HKG", "HK", "RAE de Hong Kong (China)", "Hong Kong"),
    Country("HMD", "HM", "Islas Heard y McDonald", "Heard Island and McDonald Islands"),
    Country("HND", "HN", "Honduras", "Honduras"),
    Country("HRV", "HR", "Croacia", "Croatia"),
    Country("HTI", "HT", "Haití", "Haiti"),
    Country("HUN", "HU", "Hungría", "Hungary"),
    Country("IDN", "ID", "Indonesia", "Indonesia"),
    Country("IMN", "IM", "Isla de Man", "Isle of Man"),
    Country("IND", "IN", "India", "India"),
    Country(
        "IOT", "IO", "Territorio Británico del Océano Índico", "British Indian Ocean Territory"
    ),
    Country("IRL", "IE", "Irlanda", "Ireland"),
    Country("IRN", "IR", "Irán", "Iran, Islamic Republic of"),
    Country("IRQ", "IQ", "Irak", "Iraq"),
    Country("ISL", "IS", "Islandia", "Iceland"),
    Country("ISR", "IL", "Israel", "Israel"),
    Country("ITA", "IT", "Italia", "Italy"),
    Country("JAM", "JM", "Jamaica", "Jamaica"),
    Country("JEY", "JE", "Jersey", "Jersey"),
    Country("JOR", "JO", "Jordania", "Jordan"),
    Country("JPN", "JP", "Japón", "Japan"),
    Country("KAZ", "KZ", "Kazajistán", "Kazakhstan"),
    Country("KEN", "KE", "Kenia", "Kenya"),
    Country("KGZ", "KG", "Kirguistán", "Kyrgyzstan"),
    Country("KHM", "KH", "Camboya", "Cambodia"),
    Country("KIR", "KI", "Kiribati", "Kiribati"),
    Country("KNA", "KN", "San Cristóbal y Nieves", "Saint Kitts and Nevis"),
    Country("KOR", "KR", "Corea del Sur", "Korea, Republic of"),
    Country("KWT", "KW", "Kuwait", "Kuwait"),
    Country("LAO", "LA", "Laos", "Lao People's Democratic Republic"),
    Country("LBN", "LB", "Líbano", "Lebanon"),
    Country("LBR", "LR", "Liberia", "Liberia"),
    Country("LBY", "LY", "Libia", "Libya"),
    Country("LCA", "LC", "Santa Lucía", "Saint Lucia"),
    Country("LIE", "LI", "Liechtenstein", "Liechtenstein"),
    Country("LKA", "LK", "Sri Lanka", "Sri Lanka"),
    Country("LSO", "LS", "Lesoto", "Lesotho"),
    Country("LTU", "LT", "Lituania", "Lithuania"),
    Country("LUX", "LU", "Luxemburgo", "Luxembourg"),
    Country("LVA", "LV", "Letonia", "Latvia"),
    Country("MAC", "MO", "RAE de Macao (China)", "Macao"),
    Country("MAF", "MF", "San Martín", "Saint Martin (French part)"),
    Country("MAR", "MA", "Marruecos", "Morocco"),
    Country("MCO", "MC", "Mónaco", "Monaco"),
    Country("MDA", "MD", "Moldavia", "Moldova, Republic of"),
    Country("MDG", "MG", "Madagascar", "Madagascar"),
    Country("MDV", "MV", "Maldivas", "Maldives"),
    Country("MEX", "MX", "México", "Mexico"),
    Country("MHL", "MH", "Islas Marshall", "Marshall Islands"),
    Country("MKD", "MK", "Macedonia del Norte", "North Macedonia"),
    Country("MLI", "ML", "Mali", "Mali"),
    Country("MLT", "MT", "Malta", "Malta"),
    Country("MMR", "MM", "Myanmar (Birmania)", "Myanmar"),
    Country("MNE", "ME", "Montenegro", "Montenegro"),
    Country("MNG", "MN", "Mongolia", "Mongolia"),
    Country("MNP", "MP", "Islas Marianas del Norte", "Northern Mariana Islands"),
    Country("MOZ", "MZ", "Mozambique", "Mozambique"),
    Country("MRT", "MR", "Mauritania", "Mauritania"),
    Country("MSR", "MS", "Montserrat", "Montserrat"),
    Country("MTQ", "MQ", "Martinica", "Martinique"),
    Country("MUS", "MU", "Mauricio", "Mauritius"),
    Country("MWI", "MW", "Malaui", "Malawi"),
    Country("MYS", "MY", "Malasia", "Malaysia"),
    Country("MYT", "YT", "Mayotte", "Mayotte"),
    Country("NAM", "NA", "Namibia", "Namibia"),
    Country("NCL", "NC", "Nueva Caledonia", "New Caledonia"),
    Country("NER", "NE", "Níger", "Niger"),
    Country("NFK", "NF", "Isla Norfolk", "Norfolk Island"),
    Country("NGA", "NG", "Nigeria", "Nigeria"),
    Country("NIC", "NI", "Nicaragua", "Nicaragua"),
    Country("NIU", "NU", "Niue", "Niue"),
    Country("NLD", "NL", "Países Bajos", "Netherlands"),
    Country("NOR", "NO", "Noruega", "Norway"),
    Country("NPL", "NP", "Nepal", "Nepal"),
    Country("NRU", "NR", "Nauru", "Nauru"),
    Country("NZL", "NZ", "Nueva Zelanda", "New Zealand"),
    Country("OMN", "OM", "Omán", "Oman"),
    Country("PAK", "PK", "Pakistán", "Pakistan"),
    Country("PAN", "PA", "Panamá", "Panama"),
    Country("PCN", "PN", "Islas Pitcairn", "Pitcairn"),
    Country("PER", "PE", "Perú", "Peru"),
    Country("PHL", "PH", "Filipinas", "Philippines"),
    Country("PLW", "PW", "Palaos", "Palau"),
    Country("PNG", "PG", "Papúa Nueva Guinea", "Papua New Guinea"),
    Country("POL", "PL", "Polonia", "Poland"),
    Country("PRI", "PR", "Puerto Rico", "Puerto Rico"),
    Country("PRK", "KP", "Corea del Norte", "Korea, Democratic People's Republic of"),
    Country("PRT", "PT", "Portugal", "Portugal"),
    Country("PRY", "PY", "Paraguay", "Paraguay"),
    Country("PSE", "PS", "Territorios Palestinos", "Palestine, State of"),
    Country("PYF", "PF", "Polinesia Francesa", "French Polynesia"),
    Country("QAT", "QA", "Catar", "Qatar"),
    Country("REU", "RE", "Reunión", "Réunion"),
    Country("ROU", "RO", "Rumania", "Romania"),
    Country("RUS", "RU", "Rusia", "Russian Federation"),
    Country("RWA", "RW", "Ruanda", "Rwanda"),
    Country("SAU", "SA", "Arabia Saudita", "Saudi Arabia"),
    Country("SDN", "SD", "Sudán", "Sudan"),
    Country("SEN", "SN", "Senegal", "Senegal"),
    Country("SGP", "SG", "Singapur", "Singapore"),
    Country(
        "SGS",
        "GS",
        "Islas Georgia del Sur y Sándwich del Sur",
        "South Georgia and the South Sandwich Islands",
    ),
    Country("SHN", "SH", "Santa Elena", "Saint Helena, Ascension and Tristan da Cunha"),
    Country("SJM", "SJ", "Svalbard y Jan Mayen", "Svalbard and Jan Mayen"),
    Country("SLB", "SB", "Islas Salomón", "Solomon Islands"),
    Country("SLE", "SL", "Sierra Leona", "Sierra Leone"),
    Country("SLV", "SV", "El Salvador", "El Salvador"),
    Country("SMR", "SM", "San Marino", "San Marino"),
    Country("SOM", "SO", "Somalia", "Somalia"),
    Country("SPM", "PM", "San Pedro y Miquelón", "Saint Pierre and Miquelon"),
    Country("SRB", "RS", "Serbia", "Serbia"),
    Country("SSD", "SS", "Sudán del Sur", "South Sudan"),
    Country("STP", "ST", "Santo Tomé y Príncipe", "Sao Tome and Principe"),
    Country("SUR", "SR", "Surinam", "Suriname"),
    Country("SVK", "SK", "Eslovaquia", "Slovakia"),
    Country("SVN", "SI", "Eslovenia", "Slovenia"),
    Country("SWE", "SE", "Suecia", "Sweden"),
    Country("SWZ", "SZ", "Eswatini", "Eswatini"),
    Country("SXM", "SX", "Sint Maarten", "Sint Maarten (Dutch part)"),
    Country("SYC", "SC", "Seychelles", "Seychelles"),
    Country("SYR", "SY", "Siria", "Syrian Arab Republic"),
    Country("TCA", "TC", "Islas Turcas y Caicos", "Turks and Caicos Islands"),
    Country("TCD", "TD", "Chad", "Chad"),
    Country("TGO", "TG", "Togo", "Togo"),
    Country("THA", "TH", "Tailandia", "Thailand"),
    Country("TJK", "TJ", "Tayikistán", "Tajikistan"),
    Country("TKL", "TK", "Tokelau", "Tokelau"),
    Country("TKM", "TM", "Turkmenistán", "Turkmenistan"),
    Country("TLS", "TL", "Timor Oriental", "Timor-Leste"),
    Country("TON", "TO", "Tonga", "Tonga"),
    Country("TTO", "TT", "Trinidad y Tobago", "Trinidad and Tobago"),
    Country("TUN", "TN", "Túnez", "Tunisia"),
    Country("TUR", "TR", "Turquía", "Türkiye"),
    Country("TUV", "TV", "Tuvalu", "Tuvalu"),
    Country("TWN", "TW", "Taiwán", "Taiwan, Province of China"),
    Country("TZA", "TZ", "Tanzania", "Tanzania, United Republic of"),
    Country("UGA", "UG", "Uganda", "Uganda"),
    Country("UKR", "UA", "Ucrania", "Ukraine"),
    Country(
        "UMI", "UM", "Islas menores alejadas de EE. UU.", "United States Minor Outlying Islands"
    ),
    Country("URY", "UY", "Uruguay", "Uruguay"),
    Country("USA", "US", "Estados Unidos", "United States"),
    Country("UZB", "UZ", "Uzbekistán", "Uzbekistan"),
    Country("VAT", "VA", "Ciudad del Vaticano", "Holy See (Vatican City State)"),
    Country("VCT", "VC", "San Vicente y las Granadinas", "Saint Vincent and the Grenadines"),
    Country("VEN", "VE", "Venezuela", "Venezuela, Bolivarian Republic of"),
    Country("VGB", "VG", "Islas Vírgenes Británicas", "Virgin Islands, British"),
    Country("VIR", "VI", "Islas Vírgenes de EE. UU.", "Virgin Islands, U.S."),
    Country("VNM", "VN", "Vietnam", "Viet Nam"),
    Country("VUT", "VU", "Vanuatu", "Vanuatu"),
    Country("WLF", "WF", "Wallis y Futuna", "Wallis and Futuna"),
    Country("WSM", "WS", "Samoa", "Samoa"),
    Country("YEM", "YE", "Yemen", "Yemen"),
    Country("ZAF", "ZA", "Sudáfrica", "South Africa"),
    Country("ZMB", "ZM", "Zambia", "Zambia"),
    Country("ZWE", "ZW", "Zimbabue", "Zimbabwe"),
)

BY_ALPHA_3: dict[str, Country] = {c.alpha_3: c for c in ISO_3166_1}
BY_ALPHA_2: dict[str, Country] = {c.alpha_2: c for c in ISO_3166_1}


def normalise_nationality(value: str) -> str:
    """The alpha-3 code of an ISO 3166-1 alpha-3 or alpha-2 code (any case), or ``XXA``.

    Raises ``ValueError`` (a Spanish sentence) for anything else.
    """
    code = value.strip().upper()
    if code == STATELESS or code in BY_ALPHA_3:
        return code
    if code in BY_ALPHA_2:
        return BY_ALPHA_2[code].alpha_3
    raise ValueError(
        f"«{value[:8]}» no es un código de país ISO 3166-1 (alfa-3 como MEX o alfa-2 como MX;"
        f" {STATELESS} para una persona apátrida; null si no se registró)"
    )


def country_label(code: str | None) -> str:
    """The es-MX name of a nationality code (the code itself when unknown)."""
    if code is None:
        return "Sin información"
    if code == STATELESS:
        return STATELESS_LABEL
    country = BY_ALPHA_3.get(code)
    return (country.name_es or country.name_en) if country else code


def nationality_choices() -> list[tuple[str, str]]:
    """Every nationality a form offers: the countries by Spanish name, then stateless."""
    ordered = sorted(ISO_3166_1, key=lambda c: collation_key(c.name_es))
    return [(c.alpha_3, c.name_es) for c in ordered] + [(STATELESS, STATELESS_LABEL)]


def collation_key(name: str) -> str:
    decomposed = unicodedata.normalize("NFKD", name.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))
