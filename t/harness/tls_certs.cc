// Test certificates through the openssl CLI (see tls_certs.h).
#include "tls_certs.h"

#include <sys/stat.h>

#include <stdexcept>

#include "files.h"
#include "run.h"

namespace pgrouter::test {

namespace {

void openssl(const std::vector<std::string>& args, const std::string& cwd) {
    std::vector<std::string> argv{"openssl"};
    argv.insert(argv.end(), args.begin(), args.end());
    run_checked(argv, {}, "", 60s, cwd);
}

void make_ca(const std::string& dir, const std::string& name, const std::string& cn) {
    openssl(
        {"req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30", "-subj", "/CN=" + cn,
         "-keyout", name + ".key", "-out", name + ".crt", "-addext",
         "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"},
        dir);
}

void make_leaf(const std::string& dir, const std::string& name, const std::string& ca,
               const std::string& cn, const std::string& ext) {
    write_file(dir + "/" + name + ".ext", ext);
    openssl({"req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=" + cn, "-keyout", name + ".key",
             "-out", name + ".csr"},
            dir);
    openssl({"x509", "-req", "-in", name + ".csr", "-CA", ca + ".crt", "-CAkey", ca + ".key",
             "-CAcreateserial", "-days", "30", "-sha256", "-extfile", name + ".ext", "-out",
             name + ".crt"},
            dir);
}

}  // namespace

TlsCerts::TlsCerts() : dir_(make_temp_dir("pgrouter-certs")) {
    chmod(dir_.c_str(), 0755);
    make_ca(dir_, "ca", "pgrouter test CA");
    make_ca(dir_, "wrong-ca", "some other CA");
    std::string server_ext =
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
        "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n";
    make_leaf(dir_, "server", "ca", "localhost", server_ext);
    make_leaf(dir_, "rotated", "ca", "localhost", server_ext);
    make_leaf(dir_, "client", "ca", "pgrtest",
              "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n");
    chmod((dir_ + "/client.key").c_str(), 0600);
    for (const char* f : {"ca.crt", "wrong-ca.crt", "server.crt", "rotated.crt"}) {
        chmod((dir_ + "/" + f).c_str(), 0644);
    }
}

TlsCerts::~TlsCerts() { remove_tree(dir_); }

void TlsCerts::install_server(const std::string& datadir) const {
    for (const char* f : {"server.crt", "server.key"}) {
        std::string to = datadir + "/" + f;
        write_file(to, read_file(dir_ + "/" + f));
        chmod(to.c_str(), 0600);
        chown_to_postgres(to);
    }
}

std::string TlsCerts::fingerprint(const std::string& pem_file) {
    RunResult r =
        run_checked({"openssl", "x509", "-noout", "-fingerprint", "-sha256", "-in", pem_file});
    auto eq = r.out.find('=');
    if (eq == std::string::npos) return "";
    std::string fp = r.out.substr(eq + 1);
    while (!fp.empty() && (fp.back() == '\n' || fp.back() == '\r')) fp.pop_back();
    return fp;
}

std::string TlsCerts::served_fingerprint(int port) {
    RunResult r = run({"openssl", "s_client", "-starttls", "postgres", "-connect",
                       "127.0.0.1:" + std::to_string(port)},
                      {}, "", 20s);
    auto begin = r.out.find("-----BEGIN CERTIFICATE-----");
    auto end = r.out.find("-----END CERTIFICATE-----");
    if (begin == std::string::npos || end == std::string::npos) return "";
    std::string pem = r.out.substr(begin, end + 25 - begin) + "\n";
    RunResult f = run({"openssl", "x509", "-noout", "-fingerprint", "-sha256"}, {}, pem, 20s);
    auto eq = f.out.find('=');
    if (eq == std::string::npos) return "";
    std::string fp = f.out.substr(eq + 1);
    while (!fp.empty() && (fp.back() == '\n' || fp.back() == '\r')) fp.pop_back();
    return fp;
}

}  // namespace pgrouter::test
