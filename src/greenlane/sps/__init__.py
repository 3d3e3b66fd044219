"""The SPS certificate (UN/CEFACT SPSCertificate 17, the IPPC ePhyto payload)."""
