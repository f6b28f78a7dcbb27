// Test certificates made with the openssl CLI in a private temporary directory: a CA, two
// server certificates it signed for 127.0.0.1 and localhost (the second stands in for a
// rotated certificate), a client certificate, and an unrelated CA. Removed by the destructor.
#pragma once

#include <string>

namespace pgrouter::test {

class TlsCerts {
  public:
    TlsCerts();
    ~TlsCerts();
    TlsCerts(const TlsCerts&) = delete;
    TlsCerts& operator=(const TlsCerts&) = delete;

    const std::string& dir() const { return dir_; }
    std::string ca() const { return dir_ + "/ca.crt"; }
    std::string wrong_ca() const { return dir_ + "/wrong-ca.crt"; }
    std::string cert() const { return dir_ + "/server.crt"; }
    std::string key() const { return dir_ + "/server.key"; }
    std::string rotated_cert() const { return dir_ + "/rotated.crt"; }
    std::string rotated_key() const { return dir_ + "/rotated.key"; }
    // A client certificate for user pgrtest (CN=pgrtest), signed by ca().
    std::string client_cert() const { return dir_ + "/client.crt"; }
    std::string client_key() const { return dir_ + "/client.key"; }

    // Copies a certificate and key into `datadir` as server.crt/server.key (mode 0600, owned
    // by postgres when root) for a PostgreSQL node with ssl=on.
    void install_server(const std::string& datadir) const;

    // The SHA-256 fingerprint of a PEM certificate file ("AB:CD:..."), as openssl prints it.
    static std::string fingerprint(const std::string& pem_file);
    // The fingerprint of the certificate a PostgreSQL server (or pgrouter) on 127.0.0.1:port
    // presents after SSLRequest ("" when none).
    static std::string served_fingerprint(int port);

  private:
    std::string dir_;
};

}  // namespace pgrouter::test
