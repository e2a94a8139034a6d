"""Throwaway certificates for the TLS tests, made with the `openssl` CLI in a
temporary directory: a root CA, an intermediate CA it signs, and leaf
certificates the intermediate signs. A leaf's `chain` file is the leaf then
the intermediate (what a node serves: the full chain without the root), so a
client that trusts only the root verifies the whole chain.

`Pki(dir).leaf("mx", ["mx1.example.test"])` -> Leaf(cert, key, chain);
`pki.ca_file` is the root to trust; `client_context(pki)` an ssl context that
verifies against it.
"""

import os
import ssl
import subprocess
from collections import namedtuple

Leaf = namedtuple("Leaf", "cert key chain")


def _run(args, cwd):
    subprocess.run(["openssl"] + args, cwd=cwd, check=True, capture_output=True, timeout=60)


class Pki:
    def __init__(self, root):
        self.root = str(root)
        os.makedirs(self.root, exist_ok=True)
        self.ca_file = os.path.join(self.root, "root.crt")
        self._ca("root", "Porcupine Test Root CA", None)
        self._ca("intermediate", "Porcupine Test Intermediate CA", "root")
        self.serial = 1

    def _key(self, name):
        _run(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
              "-out", name + ".key"], self.root)

    def _ca(self, name, cn, issuer):
        self._key(name)
        if issuer is None:
            _run(["req", "-x509", "-new", "-key", name + ".key", "-subj", "/CN=" + cn,
                  "-days", "365", "-sha256", "-out", name + ".crt",
                  "-addext", "basicConstraints=critical,CA:TRUE",
                  "-addext", "keyUsage=critical,keyCertSign,cRLSign"], self.root)
            return
        ext = os.path.join(self.root, name + ".ext")
        with open(ext, "w") as f:
            f.write("basicConstraints=critical,CA:TRUE,pathlen:0\n"
                    "keyUsage=critical,keyCertSign,cRLSign\n")
        _run(["req", "-new", "-key", name + ".key", "-subj", "/CN=" + cn, "-out", name + ".csr"],
             self.root)
        _run(["x509", "-req", "-in", name + ".csr", "-CA", issuer + ".crt", "-CAkey",
              issuer + ".key", "-set_serial", "1000", "-days", "365", "-sha256",
              "-extfile", ext, "-out", name + ".crt"], self.root)

    def leaf(self, name, dns_names, days=30, ips=(), crl_url=None):
        """A leaf for dns_names (the first is the CN) and ips, signed by the
        intermediate; with crl_url, a CRL distribution point (never fetched)."""
        self._key(name)
        ext = os.path.join(self.root, name + ".ext")
        with open(ext, "w") as f:
            f.write("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                    "extendedKeyUsage=serverAuth\nsubjectAltName=%s\n"
                    % ",".join(["DNS:" + n for n in dns_names] + ["IP:" + i for i in ips]))
            if crl_url:
                f.write("crlDistributionPoints=URI:%s\n" % crl_url)
        _run(["req", "-new", "-key", name + ".key", "-subj", "/CN=" + dns_names[0],
              "-out", name + ".csr"], self.root)
        self.serial += 1
        _run(["x509", "-req", "-in", name + ".csr", "-CA", "intermediate.crt", "-CAkey",
              "intermediate.key", "-set_serial", str(self.serial), "-days", str(days),
              "-sha256", "-extfile", ext, "-out", name + ".crt"], self.root)
        chain = os.path.join(self.root, name + ".chain.pem")
        with open(chain, "w") as out:
            for part in (name + ".crt", "intermediate.crt"):
                with open(os.path.join(self.root, part)) as f:
                    out.write(f.read())
        return Leaf(os.path.join(self.root, name + ".crt"), os.path.join(self.root, name + ".key"),
                    chain)


def client_context(pki):
    """An SSL context that verifies the chain and the host name against pki's root."""
    return ssl.create_default_context(cafile=pki.ca_file)


def peer_common_name(sslsock):
    """The CN of the certificate the server presented."""
    cert = sslsock.getpeercert()
    for rdn in cert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return value
    return None
