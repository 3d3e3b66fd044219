"""The single-database demo's corridor file, before the demo ran two real nodes.

``greenlane demo`` now writes its corridor with :mod:`greenlane.corridor.scaffold`;
this text stays only because ``tests/trust/corridors.py`` builds its test
corridors from it. Remove it once those tests take their corridor from elsewhere.
"""

from __future__ import annotations

CORRIDOR = """\
id = "AZ-RU"
name = "Azerbaijan to Russia, fresh produce (demo)"

[countries.AZ]
name = "Azerbaijan"
root_certificate = "pki/AZ-root.pem"

[[countries.AZ.agencies]]
id = "az-fsa"
name = "Food Safety Agency of the Republic of Azerbaijan"
roles = ["nppo", "veterinary"]

[[countries.AZ.agencies]]
id = "az-customs"
name = "State Customs Committee of the Republic of Azerbaijan"
roles = ["customs"]

[[countries.AZ.nodes]]
id = "az-node"
endpoint = "http://127.0.0.1:8401"

[countries.RU]
name = "Russian Federation"
root_certificate = "pki/RU-root.pem"

[[countries.RU.agencies]]
id = "ru-rsn"
name = "Federal Service for Veterinary and Phytosanitary Surveillance (Rosselkhoznadzor)"
roles = ["nppo", "veterinary"]

[[countries.RU.agencies]]
id = "ru-fcs"
name = "Federal Customs Service of Russia"
roles = ["customs"]

[[countries.RU.nodes]]
id = "ru-node"
endpoint = "http://127.0.0.1:8402"
"""
