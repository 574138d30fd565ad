"""
The static world the sample tenant lives in: places, networks, apps, user agents, names, result codes.

Networks carry real-world owners and ASNs so the rows read like a real tenant's, but their address
blocks are illustrative: realistic in form, chosen not to overlap one another, not a geo-IP database.
Nothing in the product derives an ASN or a location from an address; it reads both from the row,
exactly as Log Analytics stores them, so only the ASN/owner/country pairing has to be plausible.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


@dataclass(frozen=True, slots=True)
class Place:
    """A geolocation as Entra writes it in LocationDetails."""

    city: str
    state: str
    country: str
    latitude: float
    longitude: float


@dataclass(frozen=True, slots=True)
class Country:
    """A country with its summer UTC offset (the default period is June) and its main cities."""

    code: str
    name: str
    utc_offset_minutes: int
    cities: tuple[Place, ...]


class NetworkKind(StrEnum):
    """What an address block is used for; decides who may appear on it."""

    RESIDENTIAL = "residential"
    MOBILE = "mobile"
    BUSINESS = "business"
    HOSTING = "hosting"
    VPN_PROVIDER = "vpn_provider"
    MICROSOFT_SERVICE = "microsoft_service"
    MICROSOFT_CLOUD = "microsoft_cloud"
    PRIVACY_RELAY = "privacy_relay"
    SECURITY_SERVICE_EDGE = "security_service_edge"


@dataclass(frozen=True, slots=True)
class Network:
    """An address block announced by one ASN; `city` is where a geo-IP service places it ("" = the user's city)."""

    asn: int
    owner: str
    kind: NetworkKind
    country: str
    v4: str
    v6: str = ""
    city: str = ""


@dataclass(frozen=True, slots=True)
class App:
    """A client application (AppId/AppDisplayName)."""

    app_id: str
    name: str


@dataclass(frozen=True, slots=True)
class Resource:
    """A resource a token is issued for (ResourceIdentity/ResourceDisplayName)."""

    resource_id: str
    name: str


def _country(code: str, name: str, offset: int, *cities: tuple[str, str, float, float]) -> Country:
    return Country(code, name, offset, tuple(Place(city, state, code, lat, lon) for city, state, lat, lon in cities))


COUNTRIES: dict[str, Country] = {
    c.code: c
    for c in (
        _country(
            "FR",
            "France",
            120,
            ("Paris", "Ile-de-France", 48.8566, 2.3522),
            ("Lyon", "Auvergne-Rhone-Alpes", 45.7640, 4.8357),
            ("Marseille", "Provence-Alpes-Cote d'Azur", 43.2965, 5.3698),
            ("Lille", "Hauts-de-France", 50.6292, 3.0573),
            ("Toulouse", "Occitanie", 43.6047, 1.4442),
            ("Nantes", "Pays de la Loire", 47.2184, -1.5536),
            ("Bordeaux", "Nouvelle-Aquitaine", 44.8378, -0.5792),
        ),
        _country(
            "DE",
            "Germany",
            120,
            ("Berlin", "Berlin", 52.5200, 13.4050),
            ("Munich", "Bavaria", 48.1351, 11.5820),
            ("Hamburg", "Hamburg", 53.5511, 9.9937),
            ("Frankfurt am Main", "Hesse", 50.1109, 8.6821),
            ("Cologne", "North Rhine-Westphalia", 50.9375, 6.9603),
            ("Stuttgart", "Baden-Wurttemberg", 48.7758, 9.1829),
            ("Nuremberg", "Bavaria", 49.4521, 11.0767),
        ),
        _country(
            "GB",
            "United Kingdom",
            60,
            ("London", "England", 51.5074, -0.1278),
            ("Manchester", "England", 53.4808, -2.2426),
            ("Birmingham", "England", 52.4862, -1.8904),
            ("Leeds", "England", 53.8008, -1.5491),
            ("Bristol", "England", 51.4545, -2.5879),
            ("Edinburgh", "Scotland", 55.9533, -3.1883),
            ("Glasgow", "Scotland", 55.8642, -4.2518),
        ),
        _country(
            "NL",
            "Netherlands",
            120,
            ("Amsterdam", "Noord-Holland", 52.3676, 4.9041),
            ("Rotterdam", "Zuid-Holland", 51.9244, 4.4777),
            ("Utrecht", "Utrecht", 52.0907, 5.1214),
            ("Eindhoven", "Noord-Brabant", 51.4416, 5.4697),
            ("The Hague", "Zuid-Holland", 52.0705, 4.3007),
        ),
        _country(
            "ES",
            "Spain",
            120,
            ("Madrid", "Madrid", 40.4168, -3.7038),
            ("Barcelona", "Catalonia", 41.3874, 2.1686),
            ("Valencia", "Valencian Community", 39.4699, -0.3763),
            ("Seville", "Andalusia", 37.3891, -5.9845),
            ("Bilbao", "Basque Country", 43.2630, -2.9350),
        ),
        _country(
            "IT",
            "Italy",
            120,
            ("Milan", "Lombardy", 45.4642, 9.1900),
            ("Rome", "Lazio", 41.9028, 12.4964),
            ("Turin", "Piedmont", 45.0703, 7.6869),
            ("Bologna", "Emilia-Romagna", 44.4949, 11.3426),
            ("Naples", "Campania", 40.8518, 14.2681),
        ),
        _country(
            "US",
            "United States",
            -240,
            ("New York", "New York", 40.7128, -74.0060),
            ("Boston", "Massachusetts", 42.3601, -71.0589),
            ("Philadelphia", "Pennsylvania", 39.9526, -75.1652),
            ("Atlanta", "Georgia", 33.7490, -84.3880),
            ("Washington", "District of Columbia", 38.9072, -77.0369),
            ("Ashburn", "Virginia", 39.0438, -77.4874),
            ("Boydton", "Virginia", 36.6676, -78.3875),
        ),
        _country("IE", "Ireland", 60, ("Dublin", "Leinster", 53.3498, -6.2603)),
        _country("PT", "Portugal", 60, ("Lisbon", "Lisbon", 38.7223, -9.1393), ("Porto", "Porto", 41.1579, -8.6291)),
        _country("JP", "Japan", 540, ("Tokyo", "Tokyo", 35.6762, 139.6503), ("Osaka", "Osaka", 34.6937, 135.5023)),
        _country("SG", "Singapore", 480, ("Singapore", "Singapore", 1.3521, 103.8198)),
        _country("CA", "Canada", -240, ("Toronto", "Ontario", 43.6532, -79.3832), ("Montreal", "Quebec", 45.5019, -73.5674)),
        _country("AE", "United Arab Emirates", 240, ("Dubai", "Dubai", 25.2048, 55.2708)),
        _country("BR", "Brazil", -180, ("Sao Paulo", "Sao Paulo", -23.5505, -46.6333)),
        _country("IN", "India", 330, ("Mumbai", "Maharashtra", 19.0760, 72.8777), ("Bengaluru", "Karnataka", 12.9716, 77.5946)),
        _country("PL", "Poland", 120, ("Warsaw", "Mazovia", 52.2297, 21.0122)),
        _country("RO", "Romania", 180, ("Bucharest", "Bucharest", 44.4268, 26.1025)),
        _country("FI", "Finland", 180, ("Helsinki", "Uusimaa", 60.1699, 24.9384)),
        _country("NG", "Nigeria", 60, ("Lagos", "Lagos", 6.5244, 3.3792)),
        _country("RU", "Russia", 180, ("Moscow", "Moscow", 55.7558, 37.6173)),
        _country("VN", "Vietnam", 420, ("Ho Chi Minh City", "Ho Chi Minh", 10.8231, 106.6297)),
        _country("TR", "Turkey", 180, ("Istanbul", "Istanbul", 41.0082, 28.9784)),
    )
}

#: Countries an organisation's offices and staff are in.
OFFICE_COUNTRIES = ("FR", "DE", "GB", "NL", "ES", "IT", "US")

#: Where staff travel to (any of these except their own country).
TRAVEL_COUNTRIES = ("JP", "SG", "PT", "CA", "AE", "BR", "IN", "US", "ES", "IT", "DE", "GB", "NL", "FR", "IE", "PL")

#: Cities where Microsoft's own services egress from, by country.
MICROSOFT_REDMOND = Place("Redmond", "Washington", "US", 47.6740, -122.1215)
MICROSOFT_SAN_ANTONIO = Place("San Antonio", "Texas", "US", 29.4241, -98.4936)

R, M, B, H, V = NetworkKind.RESIDENTIAL, NetworkKind.MOBILE, NetworkKind.BUSINESS, NetworkKind.HOSTING, NetworkKind.VPN_PROVIDER

RESIDENTIAL: tuple[Network, ...] = (
    Network(3215, "Orange S.A.", R, "FR", "90.24.0.0/13", "2a01:cb08::/32"),
    Network(12322, "Free SAS", R, "FR", "82.64.0.0/14", "2a01:e0a::/32"),
    Network(15557, "Societe Francaise du Radiotelephone - SFR SA", R, "FR", "109.208.0.0/13", "2a02:8428::/32"),
    Network(5410, "Bouygues Telecom SA", R, "FR", "176.128.0.0/12", "2001:861::/32"),
    Network(3320, "Deutsche Telekom AG", R, "DE", "79.192.0.0/12", "2003:e4::/32"),
    Network(3209, "Vodafone GmbH", R, "DE", "88.64.0.0/13", "2a02:8070::/32"),
    Network(6805, "Telefonica Germany GmbH & Co.OHG", R, "DE", "95.112.0.0/12", "2a01:c22::/32"),
    Network(8881, "1&1 Versatel Deutschland GmbH", R, "DE", "87.122.0.0/15", "2001:16b8::/32"),
    Network(2856, "British Telecommunications PLC", R, "GB", "86.128.0.0/11", "2a00:23c0::/32"),
    Network(5089, "Virgin Media Limited", R, "GB", "82.0.0.0/13", "2a02:c7f::/32"),
    Network(5607, "Sky UK Limited", R, "GB", "90.192.0.0/12", "2a02:c7c::/32"),
    Network(13285, "TalkTalk Communications Limited", R, "GB", "89.240.0.0/13"),
    Network(1136, "KPN B.V.", R, "NL", "77.160.0.0/12", "2a02:a440::/32"),
    Network(33915, "Vodafone Libertel B.V.", R, "NL", "84.24.0.0/13", "2001:1c00::/32"),
    Network(15435, "DELTA Fiber Nederland B.V.", R, "NL", "87.208.0.0/13", "2a02:58::/32"),
    Network(3352, "Telefonica de Espana S.A.U.", R, "ES", "83.32.0.0/11", "2a0c:5a80::/32"),
    Network(12479, "Orange Espagne SA", R, "ES", "90.160.0.0/12", "2a01:c50f::/32"),
    Network(57269, "DIGI SPAIN TELECOM S.L.", R, "ES", "79.116.0.0/14"),
    Network(3269, "Telecom Italia S.p.A.", R, "IT", "79.0.0.0/13", "2001:b07::/32"),
    Network(12874, "Fastweb SpA", R, "IT", "93.32.0.0/12", "2a01:e11::/32"),
    Network(30722, "Vodafone Italia S.p.A.", R, "IT", "5.168.0.0/13", "2a01:4f0::/32"),
    Network(7922, "Comcast Cable Communications, LLC", R, "US", "73.0.0.0/9", "2601:18c::/32"),
    Network(701, "Verizon Business", R, "US", "71.160.0.0/12", "2600:4040::/32"),
    Network(20115, "Charter Communications", R, "US", "97.80.0.0/13", "2603:6000::/32"),
    Network(7018, "AT&T Services, Inc.", R, "US", "99.0.0.0/12", "2600:1700::/32"),
    # Hotel and home networks where staff travel.
    Network(4713, "NTT Communications Corporation", R, "JP", "153.240.0.0/12", "2400:4050::/32"),
    Network(2516, "KDDI CORPORATION", R, "JP", "106.128.0.0/12"),
    Network(7473, "Singapore Telecommunications Ltd", R, "SG", "116.14.0.0/15"),
    Network(4657, "StarHub Ltd", R, "SG", "183.90.0.0/15", "2406:3003::/32"),
    Network(3243, "MEO - Servicos de Comunicacoes e Multimedia S.A.", R, "PT", "85.240.0.0/13"),
    Network(2860, "NOS Comunicacoes, S.A.", R, "PT", "89.180.0.0/14", "2001:8a0::/32"),
    Network(577, "Bell Canada", R, "CA", "70.24.0.0/13"),
    Network(812, "Rogers Communications Canada Inc.", R, "CA", "99.224.0.0/11", "2607:fea8::/32"),
    Network(5384, "Emirates Telecommunications Group Company (Etisalat Group) PJSC", R, "AE", "94.200.0.0/14"),
    Network(26599, "TELEFONICA BRASIL S.A", R, "BR", "177.32.0.0/12"),
    Network(24560, "Bharti Airtel Ltd., Telemedia Services", R, "IN", "122.160.0.0/12"),
    Network(5466, "Eir Broadband", R, "IE", "86.40.0.0/13"),
    Network(5617, "Orange Polska Spolka Akcyjna", R, "PL", "83.24.0.0/13"),
)

MOBILE: tuple[Network, ...] = (
    Network(51207, "Free Mobile SAS", M, "FR", "37.164.0.0/14", "2a04:cec0::/32"),
    Network(15557, "Societe Francaise du Radiotelephone - SFR SA", M, "FR", "77.136.0.0/14", "2a02:8400::/32"),
    Network(5410, "Bouygues Telecom SA", M, "FR", "92.184.96.0/19"),
    Network(3215, "Orange S.A.", M, "FR", "90.84.0.0/16", "2a01:cb1d::/32"),
    Network(3320, "Deutsche Telekom AG", M, "DE", "80.187.0.0/16", "2a01:598::/32"),
    Network(3209, "Vodafone GmbH", M, "DE", "109.40.0.0/14", "2a00:20::/32"),
    Network(6805, "Telefonica Germany GmbH & Co.OHG", M, "DE", "176.0.0.0/13", "2a02:3035::/32"),
    Network(12576, "EE Limited", M, "GB", "31.94.0.0/16", "2a01:4c8::/32"),
    Network(25135, "Vodafone Limited", M, "GB", "85.255.232.0/21", "2a01:4b00::/32"),
    Network(206067, "Hutchison 3G UK Limited", M, "GB", "92.40.0.0/14"),
    Network(35228, "Telefonica UK Limited", M, "GB", "82.132.192.0/18"),
    Network(1136, "KPN B.V.", M, "NL", "77.60.0.0/15"),
    Network(33915, "Vodafone Libertel B.V.", M, "NL", "89.200.0.0/15"),
    Network(31615, "Odido Netherlands B.V.", M, "NL", "62.140.128.0/17", "2a02:a46::/32"),
    Network(3352, "Telefonica de Espana S.A.U.", M, "ES", "88.0.0.0/12"),
    Network(12430, "VODAFONE ESPANA S.A.U.", M, "ES", "37.133.0.0/16"),
    Network(12479, "Orange Espagne SA", M, "ES", "37.11.0.0/16"),
    Network(3269, "Telecom Italia S.p.A.", M, "IT", "151.18.0.0/15"),
    Network(30722, "Vodafone Italia S.p.A.", M, "IT", "5.90.0.0/15"),
    Network(1267, "WIND TRE S.P.A.", M, "IT", "151.36.0.0/14"),
    Network(22394, "Verizon Wireless", M, "US", "174.192.0.0/10", "2600:1010::/32"),
    Network(21928, "T-Mobile USA, Inc.", M, "US", "172.56.0.0/13", "2607:fb90::/32"),
    Network(20057, "AT&T Mobility LLC", M, "US", "107.64.0.0/10", "2600:380::/32"),
)

BUSINESS: tuple[Network, ...] = (
    Network(5511, "Orange S.A.", B, "FR", "193.253.0.0/16"),
    Network(8220, "Colt Technology Services Group Limited", B, "FR", "213.41.0.0/17"),
    Network(8220, "Colt Technology Services Group Limited", B, "DE", "213.61.128.0/17"),
    Network(3320, "Deutsche Telekom AG", B, "DE", "217.6.0.0/16"),
    Network(2856, "British Telecommunications PLC", B, "GB", "62.6.128.0/17"),
    Network(8220, "Colt Technology Services Group Limited", B, "GB", "212.36.0.0/17"),
    Network(1136, "KPN B.V.", B, "NL", "145.53.0.0/16"),
    Network(8220, "Colt Technology Services Group Limited", B, "NL", "213.206.0.0/17"),
    Network(3352, "Telefonica de Espana S.A.U.", B, "ES", "80.58.0.0/16"),
    Network(8220, "Colt Technology Services Group Limited", B, "ES", "213.143.0.0/18"),
    Network(3269, "Telecom Italia S.p.A.", B, "IT", "62.101.0.0/16"),
    Network(8220, "Colt Technology Services Group Limited", B, "IT", "213.144.128.0/18"),
    Network(3356, "Level 3 Parent, LLC", B, "US", "4.16.0.0/12"),
    Network(701, "Verizon Business", B, "US", "65.192.0.0/11"),
)

HOSTING: tuple[Network, ...] = (
    Network(14061, "DigitalOcean, LLC", H, "US", "159.203.0.0/16", "2604:a880:400::/48", "New York"),
    Network(14061, "DigitalOcean, LLC", H, "NL", "188.166.0.0/16", "2a03:b0c0:2::/48", "Amsterdam"),
    Network(14061, "DigitalOcean, LLC", H, "DE", "46.101.0.0/17", "2a03:b0c0:3::/48", "Frankfurt am Main"),
    Network(14061, "DigitalOcean, LLC", H, "GB", "178.62.0.0/17", "2a03:b0c0:1::/48", "London"),
    Network(14061, "DigitalOcean, LLC", H, "SG", "128.199.0.0/16", "", "Singapore"),
    Network(14061, "DigitalOcean, LLC", H, "IN", "139.59.0.0/16", "", "Bengaluru"),
    Network(16276, "OVH SAS", H, "FR", "51.68.0.0/16", "2001:41d0:300::/40", "Lille"),
    Network(16276, "OVH SAS", H, "CA", "144.217.0.0/16", "", "Montreal"),
    Network(16276, "OVH SAS", H, "PL", "146.59.0.0/16", "", "Warsaw"),
    Network(16276, "OVH SAS", H, "GB", "51.89.0.0/16", "", "London"),
    Network(16276, "OVH SAS", H, "DE", "51.75.64.0/18", "", "Frankfurt am Main"),
    Network(24940, "Hetzner Online GmbH", H, "DE", "88.198.0.0/16", "2a01:4f8::/32", "Nuremberg"),
    Network(24940, "Hetzner Online GmbH", H, "FI", "65.21.0.0/16", "2a01:4f9::/32", "Helsinki"),
    Network(24940, "Hetzner Online GmbH", H, "US", "5.161.0.0/16", "2a01:4ff::/32", "Ashburn"),
    Network(20473, "The Constant Company, LLC", H, "US", "45.76.0.0/16", "", "Atlanta"),
    Network(20473, "The Constant Company, LLC", H, "JP", "45.32.0.0/16", "", "Tokyo"),
    Network(20473, "The Constant Company, LLC", H, "NL", "95.179.128.0/17", "", "Amsterdam"),
    Network(20473, "The Constant Company, LLC", H, "ES", "65.20.96.0/19", "", "Madrid"),
    Network(63949, "Akamai Connected Cloud", H, "US", "172.104.0.0/15", "", "Atlanta"),
    Network(63949, "Akamai Connected Cloud", H, "DE", "139.162.128.0/17", "", "Frankfurt am Main"),
    Network(63949, "Akamai Connected Cloud", H, "IT", "172.232.192.0/19", "", "Milan"),
    Network(51167, "Contabo GmbH", H, "DE", "161.97.0.0/16", "", "Nuremberg"),
    Network(49505, "JSC Selectel", H, "RU", "92.53.64.0/18", "", "Moscow"),
    Network(45102, "Alibaba (US) Technology Co., Ltd.", H, "SG", "47.74.0.0/15", "", "Singapore"),
    Network(9009, "M247 Europe SRL", H, "RO", "89.33.8.0/21", "", "Bucharest"),
    Network(37963, "Hangzhou Alibaba Advertising Co.,Ltd.", H, "VN", "103.160.0.0/22", "", "Ho Chi Minh City"),
    Network(16509, "Amazon.com, Inc.", H, "NG", "102.37.0.0/20", "", "Lagos"),
    Network(212238, "Datacamp Limited", H, "TR", "149.102.240.0/20", "", "Istanbul"),
)

VPN_PROVIDERS: tuple[Network, ...] = (
    Network(9009, "M247 Europe SRL", V, "GB", "185.195.232.0/22", "", "London"),
    Network(9009, "M247 Europe SRL", V, "FR", "89.40.176.0/20", "", "Paris"),
    Network(9009, "M247 Europe SRL", V, "DE", "193.176.84.0/22", "", "Frankfurt am Main"),
    Network(9009, "M247 Europe SRL", V, "NL", "89.38.96.0/20", "", "Amsterdam"),
    Network(9009, "M247 Europe SRL", V, "ES", "185.93.180.0/22", "", "Madrid"),
    Network(9009, "M247 Europe SRL", V, "IT", "45.9.248.0/22", "", "Milan"),
    Network(9009, "M247 Europe SRL", V, "US", "146.70.0.0/17", "", "New York"),
    Network(60068, "Datacamp Limited", V, "GB", "84.17.32.0/19", "", "London"),
    Network(60068, "Datacamp Limited", V, "FR", "156.146.62.0/23", "", "Paris"),
    Network(60068, "Datacamp Limited", V, "DE", "195.181.160.0/20", "", "Frankfurt am Main"),
    Network(60068, "Datacamp Limited", V, "US", "89.187.160.0/19", "", "New York"),
    Network(60068, "Datacamp Limited", V, "ES", "37.19.208.0/21", "", "Madrid"),
    Network(136787, "TEFINCOM S.A.", V, "GB", "5.253.204.0/22", "", "London"),
    Network(136787, "TEFINCOM S.A.", V, "NL", "5.253.200.0/22", "", "Amsterdam"),
    Network(136787, "TEFINCOM S.A.", V, "US", "5.253.196.0/22", "", "Atlanta"),
    Network(136787, "TEFINCOM S.A.", V, "IT", "5.253.192.0/22", "", "Milan"),
    Network(147049, "PacketHub S.A.", V, "FR", "45.152.180.0/22", "", "Paris"),
    Network(147049, "PacketHub S.A.", V, "DE", "45.152.184.0/22", "", "Berlin"),
    Network(147049, "PacketHub S.A.", V, "NL", "45.152.176.0/22", "", "Amsterdam"),
    Network(62240, "Clouvider Limited", V, "GB", "45.134.140.0/22", "", "London"),
)

#: Microsoft's own egress: services acting for the user (Exchange, Teams, SharePoint, Flow).
MICROSOFT_SERVICE: tuple[Network, ...] = (
    Network(8075, "Microsoft Corporation", NetworkKind.MICROSOFT_SERVICE, "IE", "52.97.128.0/17", "2603:1026::/40", "Dublin"),
    Network(8075, "Microsoft Corporation", NetworkKind.MICROSOFT_SERVICE, "NL", "52.98.0.0/17", "2603:1027::/40", "Amsterdam"),
    Network(8075, "Microsoft Corporation", NetworkKind.MICROSOFT_SERVICE, "FR", "52.98.128.0/18", "", "Paris"),
    Network(8075, "Microsoft Corporation", NetworkKind.MICROSOFT_SERVICE, "DE", "52.98.192.0/18", "", "Frankfurt am Main"),
    Network(8075, "Microsoft Corporation", NetworkKind.MICROSOFT_SERVICE, "GB", "52.112.0.0/16", "", "London"),
    Network(8075, "Microsoft Corporation", NetworkKind.MICROSOFT_SERVICE, "US", "52.96.0.0/16", "2603:1036::/40", "Boydton"),
    Network(8068, "Microsoft Corporation", NetworkKind.MICROSOFT_SERVICE, "US", "157.55.0.0/16", "", "San Antonio"),
    Network(8068, "Microsoft Corporation", NetworkKind.MICROSOFT_SERVICE, "IE", "157.56.0.0/16", "", "Dublin"),
    Network(3598, "Microsoft Corporation", NetworkKind.MICROSOFT_SERVICE, "US", "131.107.0.0/16", "", "Redmond"),
)

#: Azure virtual machines: Microsoft's ASN, but anyone's computer (Cloud PCs, and attackers' VMs).
MICROSOFT_CLOUD: tuple[Network, ...] = (
    Network(8075, "Microsoft Corporation", NetworkKind.MICROSOFT_CLOUD, "NL", "20.61.0.0/16", "", "Amsterdam"),
    Network(8075, "Microsoft Corporation", NetworkKind.MICROSOFT_CLOUD, "IE", "20.54.0.0/16", "", "Dublin"),
    Network(8075, "Microsoft Corporation", NetworkKind.MICROSOFT_CLOUD, "FR", "20.19.0.0/16", "", "Paris"),
    Network(8075, "Microsoft Corporation", NetworkKind.MICROSOFT_CLOUD, "DE", "20.79.0.0/16", "", "Frankfurt am Main"),
    Network(8075, "Microsoft Corporation", NetworkKind.MICROSOFT_CLOUD, "GB", "20.26.0.0/16", "", "London"),
    Network(8075, "Microsoft Corporation", NetworkKind.MICROSOFT_CLOUD, "US", "20.102.0.0/16", "", "Boydton"),
)

P, S = NetworkKind.PRIVACY_RELAY, NetworkKind.SECURITY_SERVICE_EDGE

#: iCloud Private Relay egress (Safari and Mail on Apple devices). Unlike every other block here these are
#: real prefixes, taken from Apple's published list that the product ships (enrichment/egress_lists/), because
#: the product recognises a relay by its address; a test keeps them inside that list. Relays place the user
#: only roughly: the block's city is wherever its geolocation says, often not the user's own.
ICLOUD_PRIVATE_RELAY: tuple[Network, ...] = (
    Network(36183, "Akamai Technologies, Inc.", P, "FR", "172.224.237.0/24", "2a02:26f7:b380::/51", "Paris"),
    Network(36183, "Akamai Technologies, Inc.", P, "DE", "172.225.5.0/24", "", "Frankfurt am Main"),
    Network(36183, "Akamai Technologies, Inc.", P, "GB", "172.225.7.0/24", "2a02:26f7:b388::/51", "London"),
    Network(36183, "Akamai Technologies, Inc.", P, "NL", "172.225.12.0/24", "", "Amsterdam"),
    Network(54113, "Fastly, Inc.", P, "ES", "146.75.128.0/23", "", "Madrid"),
    Network(54113, "Fastly, Inc.", P, "IT", "146.75.136.0/24", "", "Milan"),
    Network(54113, "Fastly, Inc.", P, "US", "140.248.0.0/23", "", "New York"),
    Network(13335, "Cloudflare, Inc.", P, "FR", "104.28.30.0/25", "", "Marseille"),
    Network(13335, "Cloudflare, Inc.", P, "DE", "104.28.39.0/25", "", "Berlin"),
    Network(13335, "Cloudflare, Inc.", P, "US", "104.28.40.0/25", "", "Boston"),
)

#: Cloudflare WARP and Microsoft Edge Secure Network (powered by Cloudflare) egress: Cloudflare's AS13335,
#: outside Apple's relay list (Cloudflare publishes no list of its relay egress).
CLOUDFLARE_WARP: tuple[Network, ...] = (
    Network(13335, "Cloudflare, Inc.", P, "FR", "104.28.192.0/24", "", "Paris"),
    Network(13335, "Cloudflare, Inc.", P, "DE", "104.28.212.0/24", "", "Frankfurt am Main"),
    Network(13335, "Cloudflare, Inc.", P, "GB", "104.28.246.0/24", "", "London"),
    Network(13335, "Cloudflare, Inc.", P, "NL", "104.28.160.0/24", "", "Amsterdam"),
    Network(13335, "Cloudflare, Inc.", P, "US", "104.28.224.0/24", "", "Ashburn"),
    Network(13335, "Cloudflare, Inc.", P, "ES", "172.71.120.0/24", "", "Madrid"),
)

#: Security service edges an organisation sends its devices' traffic through, by provider (the keys are
#: REPLAY_SSE_PROVIDER's values). A service edge sits in a provider's data centre, often in another city
#: or country than the user; Entra Global Secure Access egresses from Microsoft's own network.
SECURITY_SERVICE_EDGES: dict[str, tuple[Network, ...]] = {
    "zscaler": (
        Network(53813, "ZSCALER, INC.", S, "FR", "165.225.20.0/23", "", "Paris"),
        Network(53813, "ZSCALER, INC.", S, "DE", "165.225.72.0/22", "", "Frankfurt am Main"),
        Network(53813, "ZSCALER, INC.", S, "GB", "147.161.224.0/23", "", "London"),
        Network(53813, "ZSCALER, INC.", S, "NL", "165.225.240.0/23", "", "Amsterdam"),
        Network(53813, "ZSCALER, INC.", S, "ES", "165.225.92.0/23", "", "Madrid"),
        Network(53813, "ZSCALER, INC.", S, "IT", "165.225.202.0/23", "", "Milan"),
        Network(53813, "ZSCALER, INC.", S, "US", "136.226.48.0/20", "", "New York"),
    ),
    "netskope": (
        Network(55256, "Netskope Inc", S, "FR", "163.116.162.0/24", "", "Paris"),
        Network(55256, "Netskope Inc", S, "DE", "163.116.178.0/24", "", "Frankfurt am Main"),
        Network(55256, "Netskope Inc", S, "GB", "163.116.146.0/24", "", "London"),
        Network(55256, "Netskope Inc", S, "NL", "163.116.150.0/24", "", "Amsterdam"),
        Network(55256, "Netskope Inc", S, "US", "163.116.135.0/24", "", "New York"),
    ),
    "entra_gsa": (
        Network(8075, "Microsoft Corporation", S, "FR", "40.89.128.0/18", "", "Paris"),
        Network(8075, "Microsoft Corporation", S, "DE", "51.116.0.0/18", "", "Frankfurt am Main"),
        Network(8075, "Microsoft Corporation", S, "GB", "51.140.0.0/17", "", "London"),
        Network(8075, "Microsoft Corporation", S, "NL", "40.114.128.0/17", "", "Amsterdam"),
        Network(8075, "Microsoft Corporation", S, "US", "40.117.0.0/17", "", "Boydton"),
    ),
}

#: Every network, for lookups and for the no-overlap check.
ALL_NETWORKS: tuple[Network, ...] = (
    *RESIDENTIAL,
    *MOBILE,
    *BUSINESS,
    *HOSTING,
    *VPN_PROVIDERS,
    *MICROSOFT_SERVICE,
    *MICROSOFT_CLOUD,
    *ICLOUD_PRIVATE_RELAY,
    *CLOUDFLARE_WARP,
    *(n for edges in SECURITY_SERVICE_EDGES.values() for n in edges),
)

#: Microsoft's ASNs as the product's microsoft_network explanation knows them.
MICROSOFT_ASNS = (8075, 8068, 3598)


def place_in(country: str, city: str) -> Place:
    """A catalog city by name; unknown names fall back to the country's first city."""
    known = COUNTRIES[country]
    for place in known.cities:
        if place.city == city:
            return place
    if city == "Redmond":
        return MICROSOFT_REDMOND
    if city == "San Antonio":
        return MICROSOFT_SAN_ANTONIO
    return known.cities[0]


def networks(pool: tuple[Network, ...], country: str) -> tuple[Network, ...]:
    """The networks of `pool` in `country`."""
    return tuple(n for n in pool if n.country == country)


# --------------------------------------------------------------------------------------------
# Applications and resources (first-party ids as Entra logs them)
# --------------------------------------------------------------------------------------------

OFFICE_HOME = App("4765445b-32c6-49b0-83e6-1d93765276ca", "OfficeHome")
ONE_OUTLOOK_WEB = App("9199bf20-a13f-4107-85dc-02114787ef48", "One Outlook Web")
EXCHANGE_APP = App("00000002-0000-0ff1-ce00-000000000000", "Office 365 Exchange Online")
TEAMS = App("1fec8e78-bce4-4aaf-ab1b-5451cc387264", "Microsoft Teams")
TEAMS_WEB = App("5e3ce6c0-2b1f-4285-8d4b-75ee78787346", "Microsoft Teams Web Client")
OFFICE = App("d3590ed6-52b3-4102-aeff-aad2292ab01c", "Microsoft Office")
OUTLOOK_MOBILE = App("27922004-5251-4030-b22d-91ecd9a37ea4", "Outlook Mobile")
ONEDRIVE_SYNC = App("ab9b8c07-8f02-4f72-87fa-80105867a763", "OneDrive SyncEngine")
AUTH_BROKER = App("29d9ed98-a469-4536-ade2-f981bc1d605e", "Microsoft Authentication Broker")
AUTHENTICATOR = App("4813382a-8fa7-425e-ab75-3b753aab3abb", "Microsoft Authenticator App")
WINDOWS_SIGN_IN = App("38aa3b87-a06d-4817-b275-7a316988d93b", "Windows Sign In")
EDGE = App("ecd6b820-32c2-49b6-98a6-444530e5a77a", "Microsoft Edge")
AZURE_PORTAL = App("c44b4083-3bb0-49c1-b47d-974e53cbdf3c", "Azure Portal")
AZURE_CLI = App("04b07795-8ddb-461a-bbee-02f9e1bf7b46", "Microsoft Azure CLI")
AZURE_POWERSHELL = App("1950a258-227b-4e31-a9cf-717495945fc2", "Microsoft Azure PowerShell")
GRAPH_EXPLORER = App("de8bc8b5-d9f9-48b1-a8ad-b748da725064", "Graph Explorer")
MY_SIGNINS = App("19db86c3-b2b9-44cc-b339-36da233a3be2", "My Signins")
MY_PROFILE = App("8c59ead7-d703-4a27-9e55-c96a0054c8d2", "My Profile")
TEAMS_SERVICES_APP = App("cc15fd57-2c6c-4117-a88c-83b1d56b4bbe", "Microsoft Teams Services")
SHAREPOINT_APP = App("00000003-0000-0ff1-ce00-000000000000", "Office 365 SharePoint Online")
FLOW_SERVICE = App("7df0a125-d3be-4c96-aa54-591f83ff541c", "Microsoft Flow Service")

EXCHANGE = Resource("00000002-0000-0ff1-ce00-000000000000", "Office 365 Exchange Online")
GRAPH = Resource("00000003-0000-0000-c000-000000000000", "Microsoft Graph")
SHAREPOINT = Resource("00000003-0000-0ff1-ce00-000000000000", "Office 365 SharePoint Online")
TEAMS_SERVICES = Resource("cc15fd57-2c6c-4117-a88c-83b1d56b4bbe", "Microsoft Teams Services")
SKYPE = Resource("00000004-0000-0ff1-ce00-000000000000", "Skype for Business Online")
OFFICE_HOME_RESOURCE = Resource("4765445b-32c6-49b0-83e6-1d93765276ca", "OfficeHome")
AZURE_MANAGEMENT = Resource("797f4846-ba00-4fd7-ba43-dac1f8f63013", "Windows Azure Service Management API")
AAD_GRAPH = Resource("00000002-0000-0000-c000-000000000000", "Windows Azure Active Directory")
DEVICE_REGISTRATION = Resource("01cb2876-7ebd-4aa4-9cc9-d28bd4d359a9", "Device Registration Service")
SUBSTRATE = Resource("4e2ebc8a-5be2-4a05-8e8f-37b6a3f2d6b1", "Office 365 Search Service")

# --------------------------------------------------------------------------------------------
# Browsers and user agents
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Browser:
    """A desktop or mobile browser: its user agent and how Entra names the OS and browser."""

    operating_system: str
    browser: str
    user_agent: str


def _edge(v: int, build: int) -> Browser:
    return Browser(
        "Windows10",
        f"Edge {v}.0.{build}",
        f"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.0.0 Safari/537.36 Edg/{v}.0.{build}.{(build * 7) % 97}",
    )


def _chrome_windows(v: int) -> Browser:
    return Browser(
        "Windows10",
        f"Chrome {v}.0.0",
        f"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.0.0 Safari/537.36",
    )


def _chrome_mac(v: int) -> Browser:
    return Browser(
        "MacOs",
        f"Chrome {v}.0.0",
        f"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.0.0 Safari/537.36",
    )


def _safari_mac(v: str) -> Browser:
    return Browser(
        "MacOs",
        f"Safari {v}",
        f"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/{v} Safari/605.1.15",
    )


def _firefox(v: int, platform: str = "Windows NT 10.0; Win64; x64", os_name: str = "Windows10") -> Browser:
    return Browser(os_name, f"Firefox {v}.0", f"Mozilla/5.0 ({platform}; rv:{v}.0) Gecko/20100101 Firefox/{v}.0")


WINDOWS_BROWSERS = (
    _edge(136, 3240),
    _edge(137, 3296),
    _edge(138, 3351),
    _chrome_windows(137),
    _chrome_windows(138),
    _firefox(139),
)
MAC_BROWSERS = (_safari_mac("18.4"), _safari_mac("18.5"), _chrome_mac(137), _chrome_mac(138))

#: What desktop apps send when they refresh tokens without a browser (Windows account manager, OneDrive, Teams).
WINDOWS_NATIVE_AGENTS = (
    "Windows-AzureAD-Authentication-Provider/1.0",
    "Microsoft SkyDriveSync 25.095.0518.0002 ship; Windows NT 10.0 (26100)",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/134.0.0.0 Safari/537.36 Edg/134.0.0.0 Teams/25163.3001.3711.5766",
)
MAC_NATIVE_AGENTS = (
    "Microsoft Outlook/16.98.25061520 (Macintosh; OS X 15.5)",
    "Microsoft Teams/25163.3001 (Macintosh; OS X 15.5)",
)


@dataclass(frozen=True, slots=True)
class Phone:
    """A phone model: Entra's OS name, its browser label, its browser and native app agents."""

    operating_system: str
    browser: str
    user_agent: str
    app_agent: str
    model: str


PHONES = (
    Phone(
        "Ios",
        "Mobile Safari 18.5",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 18_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.5 Mobile/15E148 Safari/604.1",
        "Outlook-iOS/728.4913406.prod.iphone (4.2521.0)",
        "iPhone",
    ),
    Phone(
        "Ios",
        "Mobile Safari 18.4",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 18_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.4 Mobile/15E148 Safari/604.1",
        "Outlook-iOS/727.4871021.prod.iphone (4.2519.1)",
        "iPhone",
    ),
    Phone(
        "Android",
        "Chrome Mobile 137.0.0",
        "Mozilla/5.0 (Linux; Android 14; SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/137.0.0.0 Mobile Safari/537.36",
        "Outlook-Android/2.0",
        "Galaxy S23",
    ),
    Phone(
        "Android",
        "Chrome Mobile 138.0.0",
        "Mozilla/5.0 (Linux; Android 15; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/138.0.0.0 Mobile Safari/537.36",
        "Dalvik/2.1.0 (Linux; U; Android 15; Pixel 8 Build/AP4A.250605.001)",
        "Pixel 8",
    ),
)

#: Attackers' browsers when replaying a stolen session cookie.
ATTACKER_BROWSERS = (
    _chrome_windows(136),
    _chrome_windows(138),
    Browser(
        "Linux",
        "Chrome 137.0.0",
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/137.0.0.0 Safari/537.36",
    ),
    _firefox(128, "X11; Linux x86_64", "Linux"),
    _safari_mac("17.6"),
    _edge(135, 3179),
)


@dataclass(frozen=True, slots=True)
class ScriptedClient:
    """A tool an attacker drives a stolen refresh token with: its agent, its Entra labels and client id."""

    user_agent: str
    operating_system: str
    browser: str


SCRIPTED_CLIENTS = (
    ScriptedClient("python-requests/2.32.3", "", "Python Requests 2.32"),
    ScriptedClient("python-requests/2.31.0", "", "Python Requests 2.31"),
    ScriptedClient("Go-http-client/1.1", "", ""),
    ScriptedClient("Go-http-client/2.0", "", ""),
    ScriptedClient("curl/8.7.1", "", ""),
    ScriptedClient("Mozilla/5.0 (Windows NT 10.0; Microsoft Windows 10.0.19045; en-US) PowerShell/7.4.6", "Windows10", ""),
    ScriptedClient("Mozilla/5.0 (Windows NT; Windows NT 10.0; en-US) WindowsPowerShell/5.1.19041.5737", "Windows10", "IE 7.0"),
    ScriptedClient("python/3.12.10 (Linux-6.8.0-1021-azure-x86_64-with-glibc2.39) AZURECLI/2.74.0 (DEB)", "Linux", ""),
    ScriptedClient("python-httpx/0.28.1", "", ""),
    ScriptedClient("axios/1.9.0", "", ""),
)

#: Client ids attackers use with a stolen refresh token (family-of-client-ids apps and admin tools).
SCRIPTED_APPS = (
    (AZURE_CLI, GRAPH),
    (AZURE_CLI, AZURE_MANAGEMENT),
    (GRAPH_EXPLORER, GRAPH),
    (AZURE_POWERSHELL, GRAPH),
    (AZURE_POWERSHELL, AZURE_MANAGEMENT),
    (OFFICE, GRAPH),
    (OFFICE, EXCHANGE),
    (TEAMS, GRAPH),
)

# --------------------------------------------------------------------------------------------
# Sign-in outcomes
# --------------------------------------------------------------------------------------------

RESULT_DESCRIPTIONS = {
    "0": "",
    "50126": "Error validating credentials due to invalid username or password.",
    "50074": "Strong Authentication is required.",
    "50140": "This error occurred due to 'Keep me signed in' interrupt when the user was signing-in.",
    "50076": "Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication to access the resource.",
    "50173": "The provided grant has expired due to it being revoked, a fresh auth token is needed.",
    "70044": "The session has expired or is invalid due to sign-in frequency checks by conditional access.",
    "50199": "For security reasons, user confirmation is required for this request.",
    "53003": "Access has been blocked by Conditional Access policies. The access policy does not allow token issuance.",
    "9002341": "User is required to permit SSO.",
}

# --------------------------------------------------------------------------------------------
# People
# --------------------------------------------------------------------------------------------

FIRST_NAMES = {
    "FR": (
        "Camille",
        "Louis",
        "Chloe",
        "Hugo",
        "Manon",
        "Lucas",
        "Lea",
        "Jules",
        "Ines",
        "Arthur",
        "Sarah",
        "Nathan",
        "Julie",
        "Antoine",
        "Claire",
        "Mathieu",
        "Emma",
        "Thomas",
    ),
    "DE": (
        "Lukas",
        "Anna",
        "Felix",
        "Lena",
        "Jonas",
        "Marie",
        "Paul",
        "Sophie",
        "Leon",
        "Laura",
        "Maximilian",
        "Julia",
        "Tim",
        "Katharina",
        "Jan",
        "Hannah",
        "Niklas",
        "Lisa",
    ),
    "GB": (
        "Oliver",
        "Amelia",
        "George",
        "Isla",
        "Harry",
        "Olivia",
        "Jack",
        "Emily",
        "Charlie",
        "Grace",
        "Thomas",
        "Sophie",
        "James",
        "Lucy",
        "William",
        "Charlotte",
        "Daniel",
        "Hannah",
    ),
    "NL": (
        "Daan",
        "Emma",
        "Sem",
        "Julia",
        "Lucas",
        "Mila",
        "Finn",
        "Tess",
        "Levi",
        "Sophie",
        "Milan",
        "Zoe",
        "Bram",
        "Sanne",
        "Thijs",
        "Lotte",
        "Ruben",
        "Fleur",
    ),
    "ES": (
        "Hugo",
        "Lucia",
        "Martin",
        "Sofia",
        "Pablo",
        "Martina",
        "Alejandro",
        "Maria",
        "Daniel",
        "Paula",
        "Javier",
        "Carmen",
        "Diego",
        "Elena",
        "Sergio",
        "Laura",
        "Adrian",
        "Marta",
    ),
    "IT": (
        "Leonardo",
        "Sofia",
        "Francesco",
        "Giulia",
        "Alessandro",
        "Aurora",
        "Lorenzo",
        "Alice",
        "Mattia",
        "Ginevra",
        "Andrea",
        "Chiara",
        "Marco",
        "Francesca",
        "Luca",
        "Sara",
        "Matteo",
        "Elena",
    ),
    "US": (
        "Liam",
        "Olivia",
        "Noah",
        "Emma",
        "James",
        "Ava",
        "Michael",
        "Sophia",
        "Ethan",
        "Mia",
        "Daniel",
        "Harper",
        "Jacob",
        "Abigail",
        "Logan",
        "Emily",
        "Ryan",
        "Madison",
    ),
}
LAST_NAMES = {
    "FR": (
        "Martin",
        "Bernard",
        "Dubois",
        "Thomas",
        "Robert",
        "Richard",
        "Petit",
        "Durand",
        "Leroy",
        "Moreau",
        "Simon",
        "Laurent",
        "Lefebvre",
        "Michel",
        "Garcia",
        "David",
        "Bertrand",
        "Roux",
        "Vincent",
        "Fournier",
    ),
    "DE": (
        "Muller",
        "Schmidt",
        "Schneider",
        "Fischer",
        "Weber",
        "Meyer",
        "Wagner",
        "Becker",
        "Schulz",
        "Hoffmann",
        "Koch",
        "Richter",
        "Klein",
        "Wolf",
        "Schroder",
        "Neumann",
        "Schwarz",
        "Braun",
        "Zimmermann",
        "Hartmann",
    ),
    "GB": (
        "Smith",
        "Jones",
        "Taylor",
        "Brown",
        "Williams",
        "Wilson",
        "Johnson",
        "Davies",
        "Patel",
        "Robinson",
        "Wright",
        "Thompson",
        "Evans",
        "Walker",
        "White",
        "Roberts",
        "Green",
        "Hall",
        "Wood",
        "Clarke",
    ),
    "NL": (
        "de Jong",
        "Jansen",
        "de Vries",
        "van den Berg",
        "van Dijk",
        "Bakker",
        "Janssen",
        "Visser",
        "Smit",
        "Meijer",
        "de Boer",
        "Mulder",
        "de Groot",
        "Bos",
        "Vos",
        "Peters",
        "Hendriks",
        "van Leeuwen",
        "Dekker",
        "Brouwer",
    ),
    "ES": (
        "Garcia",
        "Rodriguez",
        "Gonzalez",
        "Fernandez",
        "Lopez",
        "Martinez",
        "Sanchez",
        "Perez",
        "Gomez",
        "Martin",
        "Jimenez",
        "Ruiz",
        "Hernandez",
        "Diaz",
        "Moreno",
        "Alvarez",
        "Romero",
        "Alonso",
        "Gutierrez",
        "Navarro",
    ),
    "IT": (
        "Rossi",
        "Russo",
        "Ferrari",
        "Esposito",
        "Bianchi",
        "Romano",
        "Colombo",
        "Ricci",
        "Marino",
        "Greco",
        "Bruno",
        "Gallo",
        "Conti",
        "De Luca",
        "Costa",
        "Giordano",
        "Mancini",
        "Rizzo",
        "Lombardi",
        "Moretti",
    ),
    "US": (
        "Smith",
        "Johnson",
        "Williams",
        "Brown",
        "Jones",
        "Miller",
        "Davis",
        "Wilson",
        "Anderson",
        "Taylor",
        "Thomas",
        "Moore",
        "Martin",
        "Jackson",
        "Thompson",
        "White",
        "Harris",
        "Clark",
        "Lewis",
        "Walker",
    ),
}

#: Fictional organisations (Microsoft's sample-company names) the tenant may be.
ORGANISATIONS = (
    ("Contoso", "contoso.com"),
    ("Fabrikam", "fabrikam.com"),
    ("Northwind Traders", "northwindtraders.com"),
    ("Tailspin Toys", "tailspintoys.com"),
    ("Woodgrove Bank", "woodgrovebank.com"),
    ("Adventure Works", "adventure-works.com"),
)
