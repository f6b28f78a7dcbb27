#!/bin/sh
# Package checks, run by `make package-check`: the man pages (mandoc lint, rendering, the
# version, every parser directive documented, the annotated example parses), the systemd
# unit (systemd-analyze verify), the .deb (lintian, dpkg -i, files, `pgrouter -t` on the
# shipped config, the unit's ExecStart run by hand, a one-query smoke test through the
# installed binary against a throwaway PostgreSQL, an upgrade in place to the next version
# while a client session stays open, dpkg --purge) and the .rpm (rpm -qlp lists the .deb's
# files). Installing needs root or password-less sudo; without them, or
# without a tool, a step is skipped with the reason. Ends with "N passed, N failed,
# N skipped"; exits 1 when anything failed.
set -u

cd "$(dirname "$0")/../.." || exit 1
BUILD=${BUILD:-build}
MAKE=${MAKE:-make}
VERSION=$(sed -nE 's/^inline constexpr std::string_view kVersion = "([^"]+)";.*/\1/p' include/pgrouter/base/version.h)
PAGES="man/pgrouter.8 man/pgrouter.conf.5 man/pgrouter-hba.5"

passed=0 failed=0 skipped=0
tmp=$(mktemp -d /tmp/pgrouter-pkgcheck.XXXXXX) || exit 1
chmod 0755 "$tmp"

ok() { passed=$((passed + 1)); echo "ok    $*"; }
fail() { failed=$((failed + 1)); echo "FAIL  $*"; }
skip() { skipped=$((skipped + 1)); echo "skip  $*"; }
indent() { sed 's/^/      /'; }
# check DESCRIPTION COMMAND...: passes when COMMAND exits 0; shows its output when not.
check() {
    desc=$1; shift
    if "$@" >"$tmp/out" 2>&1; then ok "$desc"; else fail "$desc"; indent <"$tmp/out"; fi
}
# quiet DESCRIPTION COMMAND...: passes when COMMAND exits 0 and prints nothing.
quiet() {
    desc=$1; shift
    "$@" >"$tmp/out" 2>&1
    rc=$?
    if [ $rc = 0 ] && [ ! -s "$tmp/out" ]; then ok "$desc"; else fail "$desc (exit $rc)"; indent <"$tmp/out"; fi
}
have() { command -v "$1" >/dev/null 2>&1; }
# verify_unit DESCRIPTION UNIT [ENV...]: systemd-analyze verify passes and says nothing about
# pgrouter (it also loads, and may complain about, the other units of this machine).
verify_unit() {
    desc=$1 unit=$2; shift 2
    env "$@" systemd-analyze verify "$unit" >"$tmp/out" 2>&1
    rc=$?
    if [ $rc = 0 ] && ! grep -q -e pgrouter -e "$tmp" "$tmp/out"; then
        ok "$desc"
    else
        fail "$desc (exit $rc)"
        indent <"$tmp/out"
    fi
}

# Polls COMMAND until it succeeds or SECONDS pass: wait_until SECONDS COMMAND...
wait_until() {
    deadline=$(($(date +%s) + $1)); shift
    until "$@" >/dev/null 2>&1; do
        [ "$(date +%s)" -lt "$deadline" ] || return 1
        sleep 0.2
    done
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null ||
        echo $((20000 + $(od -An -N2 -tu2 /dev/urandom) % 20000))
}

SUDO=""
can_root=yes
if [ "$(id -u)" != 0 ]; then
    if have sudo && sudo -n true 2>/dev/null; then SUDO=sudo; else can_root=no; fi
fi
as_root() { $SUDO "$@"; }

installed_by_us=no
router_pid=""   # the background job: runuser, waiting for pgrouter
router=""       # pgrouter's supervisor
new_router=""   # the supervisor that took over from it in the upgrade check
# start_router LOG ARGS...: starts /usr/sbin/pgrouter ARGS as user pgrouter in the
# background; sets router_pid (the job) and router (the supervisor's pid).
start_router() {
    log=$1; shift
    as_root install -d -o pgrouter -m 0755 "$tmp/run"
    as_root rm -f "$tmp/run/pid"
    as_root runuser -u pgrouter -- sh -c 'echo $$ >"$0/pid" && exec /usr/sbin/pgrouter "$@"' \
        "$tmp/run" "$@" >"$log" 2>&1 &
    router_pid=$!
    wait_until 5 test -s "$tmp/run/pid"
    router=$(cat "$tmp/run/pid" 2>/dev/null)
}
# gone PID: the process does not exist or is a zombie (an orphan's parent may never reap it).
gone() { ! [ -e "/proc/$1" ] || grep -qE '^[0-9]+ \(.*\) Z' "/proc/$1/stat" 2>/dev/null; }
# stop_router: SIGTERM to the supervisor; sets rc to its exit status.
stop_router() {
    [ -z "$router" ] || as_root kill -TERM "$router"
    wait "$router_pid"
    rc=$?
    router_pid="" router=""
}
# upgrade_in_place: with the smoke test's router serving and a psql session open through
# it, dpkg -i the next version; its postinst hands the router over to the new binary
# (SIGUSR2). The session must survive on its backend; new connections reach the new
# supervisor; the old one exits 0 once the session has left.
upgrade_in_place() {
    old_sup=$(cat /run/pgrouter/pgrouter.pid 2>/dev/null)
    mkfifo "$tmp/psql.in"
    psql -X -At -h 127.0.0.1 -p "$listen_port" -U postgres -d postgres <"$tmp/psql.in" >"$tmp/psql.out" 2>&1 &
    psql_pid=$!
    exec 3>"$tmp/psql.in"
    echo "SELECT 'before', pg_backend_pid();" >&3
    wait_until 10 grep -q '^before|' "$tmp/psql.out"
    backend=$(sed -n 's/^before|//p' "$tmp/psql.out")
    if as_root dpkg -i "$deb_next" >"$tmp/dpkg-next.log" 2>&1; then
        ok "dpkg -i $deb_next upgrades the installed package in place"
    else
        fail "dpkg -i $deb_next"
    fi
    indent <"$tmp/dpkg-next.log" | grep pgrouter-upgrade
    new_router=$(cat /run/pgrouter/pgrouter.pid 2>/dev/null)
    check "postinst handed the running pgrouter over to the new binary" \
        grep -q "pgrouter-upgrade: pgrouter upgraded (supervisor pid $old_sup, now $new_router)" "$tmp/dpkg-next.log"
    check "the pidfile names a new supervisor running the new /usr/sbin/pgrouter" sh -c \
        '[ -n "$2" ] && [ "$1" != "$2" ] && [ "$(stat -L -c %i /proc/$2/exe)" = "$(stat -c %i /usr/sbin/pgrouter)" ]' \
        sh "$old_sup" "$new_router"
    echo "SELECT 'after', pg_backend_pid();" >&3
    wait_until 10 grep -q '^after|' "$tmp/psql.out"
    check "the client session survived the upgrade, on the same backend" \
        test -n "$backend" -a "$(sed -n 's/^after|//p' "$tmp/psql.out")" = "$backend"
    check "a new connection is served after the upgrade" sh -c \
        '[ "$(psql -X -At -h 127.0.0.1 -p "$1" -U postgres -d postgres -c "SELECT 6 * 7")" = 42 ]' sh "$listen_port"
    check "the installed version is $next_version" test "$(dpkg-query -W -f='${Version}' pgrouter)" = "$next_version"
    exec 3>&-
    wait "$psql_pid"
    check "the old supervisor exits once its session has left" wait_until 20 gone "$old_sup"
    wait "$router_pid"
    rc=$?
    router_pid="" router=""
    check "the old supervisor's exit status is 0 (was $rc)" test "$rc" = 0
}

pg_data=""
pg_ctl=""
cleanup() {
    [ -z "$router" ] || as_root kill -KILL "$router" 2>/dev/null
    [ -z "$new_router" ] || as_root kill -KILL "$new_router" 2>/dev/null
    [ -z "$pg_data" ] || as_root runuser -u postgres -- "$pg_ctl" -D "$pg_data" -m immediate stop >/dev/null 2>&1
    if [ $installed_by_us = yes ]; then as_root dpkg --purge pgrouter >/dev/null 2>&1; fi
    as_root rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

echo "== version $VERSION (include/pgrouter/base/version.h)"
[ -n "$VERSION" ] && ok "version.h defines kVersion" || fail "no kVersion in include/pgrouter/base/version.h"
for page in $PAGES; do
    check "$page carries the version (.Os pgrouter $VERSION)" grep -qx ".Os pgrouter $VERSION" "$page"
done
changelog_version=$(dpkg-parsechangelog -l packaging/debian/changelog -S Version 2>/dev/null || echo "?")
[ "$changelog_version" = "$VERSION" ] ||
    echo "note  packaging/debian/changelog is at $changelog_version; make deb adds an entry for $VERSION"

echo "== man pages"
if have mandoc; then
    for page in $PAGES; do quiet "mandoc -Tlint -Wwarning $page" mandoc -Tlint -Wwarning "$page"; done
else
    skip "mandoc lint: mandoc not installed (make package-deps)"
fi
if have man; then
    for page in $PAGES; do
        check "man -l $page renders" sh -c 'out=$(MANWIDTH=80 man -l "$1" 2>&1 >/dev/null) && [ -z "$out" ] &&
            MANWIDTH=80 man -l "$1" 2>/dev/null | grep -q "^SYNOPSIS\|^DESCRIPTION"' sh "$page"
    done
else
    skip "man -l: man not installed"
fi

# Every directive the parser accepts has an ".It Cm NAME" entry in pgrouter.conf(5), and
# every entry there is a directive. The names come from the table itself (compiled with
# src/config/directives.cc), or from its source text if that cannot be built.
echo "== directives documented"
documented=$(sed -n '/^\.Sh DIRECTIVES/,/^\.Sh /p' man/pgrouter.conf.5 | sed -nE 's/^\.It Cm ([a-z][a-z-]*).*/\1/p' | sort -u)
cat >"$tmp/doccheck.cc" <<'EOF'
#include <iostream>
#include <iterator>
#include <string>

#include "pgrouter/config/config.h"
#include "pgrouter/config/directives.h"

// doccheck names: the directive table; doccheck parse < FILE: parse_config's verdict.
int main(int argc, char** argv) {
    std::string mode = argc > 1 ? argv[1] : "";
    if (mode == "names") {
        for (const auto& d : pgrouter::directives()) std::cout << d.name << "\n";
        return 0;
    }
    std::string text((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
    auto result = pgrouter::parse_config(text, "example");
    for (const auto& e : result.errors) std::cout << e.to_string() << "\n";
    return result.config ? 0 : 1;
}
EOF
doccheck=""
if [ -f src/config/directives.cc ] &&
    ${CXX:-g++} -std=c++20 -O0 -Iinclude -I/usr/include/postgresql -DBOOST_ASIO_HAS_CO_AWAIT \
        -DBOOST_ASIO_HAS_STD_COROUTINE "$tmp/doccheck.cc" src/config/*.cc \
        src/base/log.cc -o "$tmp/doccheck" -pthread >"$tmp/cc.out" 2>&1; then
    doccheck="$tmp/doccheck"
    accepted=$("$doccheck" names | sort -u)
elif [ -f src/config/directives.cc ]; then
    echo "note  cannot build the directive table; reading src/config/directives.cc as text"
    indent <"$tmp/cc.out" | head -n 5
    accepted=$(tr '\n' ' ' <src/config/directives.cc | grep -oE 'Directive\{ *"[a-z-]+"' |
        sed -E 's/Directive\{ *"(.*)"/\1/' | sort -u)
else
    echo "note  no src/config/directives.cc; using the directive list of the configuration grammar"
    accepted=$(printf '%s\n' listen monitor workers hba authdb tls ciphers cert key ca user group \
        pidfile log health timeout check lag-interval database username password backend lag \
        weight replstatus | sort -u)
fi
printf '%s\n' "$accepted" >"$tmp/accepted"
printf '%s\n' "$documented" >"$tmp/documented"
missing=$(comm -23 "$tmp/accepted" "$tmp/documented")
extra=$(comm -13 "$tmp/accepted" "$tmp/documented")
n=$(printf '%s\n' "$accepted" | grep -c .)
if [ -n "$accepted" ] && [ -z "$missing" ]; then
    ok "all $n directives the parser accepts are in man/pgrouter.conf.5"
else
    fail "directives missing from man/pgrouter.conf.5: $(echo $missing)"
fi
if [ -z "$extra" ]; then
    ok "every directive documented in man/pgrouter.conf.5 is accepted by the parser"
else
    fail "documented in man/pgrouter.conf.5 but not accepted by the parser: $(echo $extra)"
fi
if [ -n "$doccheck" ]; then
    # The annotated example: the first literal block of EXAMPLES, roff escapes undone.
    sed -n '/^\.Sh EXAMPLES/,/^\.Sh /p' man/pgrouter.conf.5 | sed -n '/^\.Bd -literal/,/^\.Ed/p' |
        sed -e '1d' -e '/^\.Ed/,$d' -e 's/\\e/\\/g' -e 's/\\&//g' >"$tmp/example.conf"
    check "the annotated example in pgrouter.conf(5) parses" sh -c '[ -s "$1" ] && "$2" parse <"$1"' \
        sh "$tmp/example.conf" "$doccheck"
else
    skip "annotated example: the parser could not be built"
fi

echo "== systemd unit"
if have systemd-analyze; then
    # Before installation: the real binary path and man pages do not exist yet, so verify a
    # copy that points at a stand-in executable, with the pages on MANPATH.
    mkdir -p "$tmp/sd/man/man8" "$tmp/sd/man/man5" "$tmp/sd/bin"
    cp man/pgrouter.8 "$tmp/sd/man/man8/" && cp man/*.5 "$tmp/sd/man/man5/"
    printf '#!/bin/sh\n' >"$tmp/sd/bin/pgrouter" && chmod +x "$tmp/sd/bin/pgrouter"
    sed "s#/usr/sbin/pgrouter#$tmp/sd/bin/pgrouter#g" etc/pgrouter.service >"$tmp/sd/pgrouter.service"
    verify_unit "systemd-analyze verify etc/pgrouter.service (stand-in binary)" \
        "$tmp/sd/pgrouter.service" MANPATH="$tmp/sd/man"
else
    skip "systemd-analyze verify: systemd-analyze not installed (apt-get install systemd)"
fi

echo "== Debian package"
deb="$BUILD/pgrouter_${VERSION}_$(dpkg --print-architecture 2>/dev/null).deb"
if ! have dpkg-buildpackage || ! have dh || ! have lintian; then
    skip "deb: dpkg-buildpackage, debhelper or lintian missing (make package-deps)"
    deb=""
elif "$MAKE" --no-print-directory deb >"$tmp/deb.log" 2>&1 && [ -f "$deb" ]; then
    ok "make deb built $deb (lintian --fail-on error passed)"
    lintian --tag-display-limit 0 "$deb" 2>/dev/null >"$tmp/lintian.out"
    if grep -q '^E:' "$tmp/lintian.out"; then fail "lintian errors"; else ok "lintian: no errors"; fi
    if [ -s "$tmp/lintian.out" ]; then indent <"$tmp/lintian.out"; else echo "      (lintian printed no tags)"; fi
    check "the .deb's version is $VERSION" test "$(dpkg-deb -f "$deb" Version)" = "$VERSION"
    # Version N+1 for the upgrade check: the same build, a bumped changelog.
    next_version="$VERSION+1"
    deb_next="$BUILD/pgrouter_${next_version}_$(dpkg --print-architecture).deb"
    if (cd "$BUILD/deb-src" &&
        { printf 'pgrouter (%s) unstable; urgency=medium\n\n  * Upgrade check.\n\n -- %s  %s\n\n' \
            "$next_version" "$(dpkg-parsechangelog -S Maintainer)" "$(date -R)"; cat debian/changelog; } \
            >debian/changelog.next && mv debian/changelog.next debian/changelog &&
        env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL dpkg-buildpackage -us -uc -b -nc) >"$tmp/deb-next.log" 2>&1 &&
        [ -f "$deb_next" ]; then
        ok "built version $next_version (bumped changelog) for the upgrade check"
    else
        fail "could not build version $next_version"
        tail -n 20 "$tmp/deb-next.log" | indent
        deb_next=""
    fi
else
    fail "make deb"
    tail -n 40 "$tmp/deb.log" | indent
    deb=""
fi

if [ -z "$deb" ]; then
    skip "install checks: no .deb"
elif [ $can_root = no ]; then
    skip "install checks: need root or password-less sudo for dpkg -i"
elif dpkg-query -W -f='${Status}' pgrouter 2>/dev/null | grep -q 'ok installed'; then
    skip "install checks: a pgrouter package is already installed here; remove it first"
elif as_root dpkg -i "$deb" >"$tmp/dpkg.log" 2>&1; then
    installed_by_us=yes
    ok "dpkg -i $deb"
    unitdir=/lib/systemd/system
    [ -f $unitdir/pgrouter.service ] || unitdir=/usr/lib/systemd/system
    check "/usr/sbin/pgrouter is installed, executable" test -x /usr/sbin/pgrouter
    for f in /usr/share/man/man8/pgrouter.8.gz /usr/share/man/man5/pgrouter.conf.5.gz \
        /usr/share/man/man5/pgrouter-hba.5.gz /etc/pgrouter/pgrouter.conf /etc/pgrouter/hba.conf \
        /usr/share/doc/pgrouter/copyright; do
        check "$f is installed" test -s "$f"
    done
    check "the installed unit is etc/pgrouter.service" cmp $unitdir/pgrouter.service etc/pgrouter.service
    check "the configuration files are conffiles" sh -c \
        'c=$(dpkg-query -W -f="\${Conffiles}" pgrouter) && echo "$c" | grep -q " /etc/pgrouter/pgrouter.conf " &&
         echo "$c" | grep -q " /etc/pgrouter/hba.conf "'
    check "postinst created the pgrouter system user" sh -c \
        'e=$(getent passwd pgrouter) && [ "$(echo "$e" | cut -d: -f6)" = /nonexistent ] &&
         [ "$(echo "$e" | cut -d: -f3)" -lt 1000 ] && getent group pgrouter >/dev/null'
    check "pgrouter -V prints $VERSION" sh -c '/usr/sbin/pgrouter -V | grep -qx "pgrouter $1"' sh "$VERSION"
    check "pgrouter -t -c /etc/pgrouter/pgrouter.conf passes on the shipped config" sh -c \
        '[ "$(/usr/sbin/pgrouter -t -c /etc/pgrouter/pgrouter.conf)" = "configuration OK" ]'
    check "the unit's ExecStartPre (pgrouter -t, as user pgrouter) passes" \
        as_root runuser -u pgrouter -- /usr/sbin/pgrouter -t -c /etc/pgrouter/pgrouter.conf
    for page in "8 pgrouter" "5 pgrouter.conf" "5 pgrouter-hba"; do
        check "man $page finds and renders the installed page" sh -c \
            'MANWIDTH=80 man $1 2>/dev/null | grep -q "^SYNOPSIS\|^DESCRIPTION"' sh "$page"
        check "man -l renders the installed $page" sh -c \
            'MANWIDTH=80 man -l /usr/share/man/man$1/$2.$1.gz 2>/dev/null | grep -q "^DESCRIPTION"' sh $page
    done
    if have systemd-analyze; then
        verify_unit "systemd-analyze verify $unitdir/pgrouter.service (installed)" \
            $unitdir/pgrouter.service
    fi

    # The unit's ExecStart, by hand (no systemd here to start it): as user pgrouter, with the
    # runtime directory systemd would create, on the shipped config. It must come up, answer
    # on the monitor port, and stop with exit 0 on SIGTERM.
    listen_port=$(sed -nE 's/^listen[[:space:]]+.*:([0-9]+).*/\1/p' /etc/pgrouter/pgrouter.conf)
    monitor_port=$(sed -nE 's/^monitor[[:space:]]+.*:([0-9]+).*/\1/p' /etc/pgrouter/pgrouter.conf)
    monitor_port=${monitor_port:-14231}
    if ! have nc; then
        skip "ExecStart by hand: nc not installed"
    elif nc -z 127.0.0.1 "${listen_port:-5432}" 2>/dev/null || nc -z 127.0.0.1 "$monitor_port" 2>/dev/null; then
        skip "ExecStart by hand: port ${listen_port:-5432} or $monitor_port of the shipped config is in use here"
    else
        as_root install -d -o pgrouter -g pgrouter -m 0755 /run/pgrouter
        exec_start=$(sed -n 's/^ExecStart=//p' etc/pgrouter.service)
        start_router "$tmp/execstart.log" ${exec_start#/usr/sbin/pgrouter }
        if wait_until 10 sh -c 'nc -w 2 127.0.0.1 "$1" </dev/null | grep -q "^backends "' sh "$monitor_port"; then
            ok "the unit's ExecStart runs as pgrouter and answers on the monitor port"
            nc -w 2 127.0.0.1 "$monitor_port" </dev/null | indent
        else
            fail "the unit's ExecStart did not answer on 127.0.0.1:$monitor_port"
            indent <"$tmp/execstart.log"
        fi
        stop_router
        check "SIGTERM stops it with exit 0 (was $rc)" test "$rc" = 0
        as_root rm -rf /run/pgrouter
    fi

    # One query through the installed binary against a throwaway one-node PostgreSQL.
    pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    if [ -z "$pg_bin" ] || ! getent passwd postgres >/dev/null || ! have psql || ! have nc; then
        skip "smoke test: needs the postgresql server package, the postgres user, psql and nc"
    else
        pg_ctl="$pg_bin/pg_ctl"
        pg_port=$(free_port) listen_port=$(free_port) monitor_port=$(free_port)
        as_root install -d -o postgres -m 0700 "$tmp/pg"
        if as_root runuser -u postgres -- "$pg_bin/initdb" -D "$tmp/pg/data" -U postgres -A trust \
            >"$tmp/initdb.log" 2>&1; then
            pg_data="$tmp/pg/data"
        fi
        if [ -n "$pg_data" ] && as_root runuser -u postgres -- "$pg_ctl" -D "$pg_data" -w -l "$tmp/pg/log" \
            -o "-p $pg_port -c listen_addresses=127.0.0.1 -k $tmp/pg" start >"$tmp/pgstart.log" 2>&1; then
            printf 'host all all 127.0.0.1/32 trust\n' >"$tmp/hba.conf"
            cat >"$tmp/smoke.conf" <<EOF
listen 127.0.0.1:$listen_port
monitor 127.0.0.1:$monitor_port
workers 1
hba $tmp/hba.conf
health { timeout 2s; check 1s; username postgres; database postgres }
backend 127.0.0.1:$pg_port
EOF
            # The pidfile the packaged upgrade helper finds (the shipped config's default).
            echo "pidfile /run/pgrouter/pgrouter.pid" >>"$tmp/smoke.conf"
            as_root install -d -o pgrouter -g pgrouter -m 0755 /run/pgrouter
            chmod 0644 "$tmp/smoke.conf" "$tmp/hba.conf"
            start_router "$tmp/smoke.log" -F -c "$tmp/smoke.conf"
            if wait_until 20 sh -c '[ "$(psql -X -At -h 127.0.0.1 -p "$1" -U postgres -d postgres \
                    -c "SELECT 40 + 2")" = 42 ]' sh "$listen_port"; then
                ok "smoke test: SELECT through the installed pgrouter (-F, as pgrouter) returns 42"
            else
                fail "smoke test: no answer through pgrouter on 127.0.0.1:$listen_port"
                psql -X -At -h 127.0.0.1 -p "$listen_port" -U postgres -d postgres -c "SELECT 1" 2>&1 | indent
                tail -n 20 "$tmp/smoke.log" | indent
            fi
            if [ -z "${deb_next:-}" ]; then
                skip "upgrade in place: no package of the next version"
            else
                upgrade_in_place
            fi
            if [ -n "$router_pid" ]; then
                stop_router
                check "smoke test: SIGTERM stops it with exit 0 (was $rc)" test "$rc" = 0
            fi
            if [ -n "$new_router" ]; then
                as_root kill -TERM "$new_router"
                check "the new supervisor stops on SIGTERM" wait_until 15 gone "$new_router"
                new_router=""
            fi
            as_root rm -rf /run/pgrouter
            as_root runuser -u postgres -- "$pg_ctl" -D "$pg_data" -m fast stop >/dev/null 2>&1
            pg_data=""
        else
            fail "smoke test: could not start PostgreSQL"
            cat "$tmp/initdb.log" "$tmp/pgstart.log" "$tmp/pg/log" 2>/dev/null | tail -n 20 | indent
            pg_data=""
        fi
    fi

    if as_root dpkg --purge pgrouter >"$tmp/purge.log" 2>&1; then
        installed_by_us=no
        ok "dpkg --purge pgrouter"
        check "purge removed the program, the configuration and the unit" sh -c \
            '! [ -e /usr/sbin/pgrouter ] && ! [ -e /etc/pgrouter ] && ! [ -e "$1/pgrouter.service" ]' sh $unitdir
        check "purge removed the pgrouter user and group" sh -c \
            '! getent passwd pgrouter >/dev/null && ! getent group pgrouter >/dev/null'
    else
        fail "dpkg --purge pgrouter"
        indent <"$tmp/purge.log"
    fi
else
    fail "dpkg -i $deb"
    indent <"$tmp/dpkg.log"
fi

echo "== RPM package"
# Regular files of each package, comparable: no docs, licences or lintian overrides (each
# format has its own), no build-id links, man pages without .gz, units under /usr/lib/systemd.
deb_files() {
    dpkg-deb -c "$1" | awk '$1 ~ /^-/ { print $6 }' | sed -e 's/^\.//' -e 's/\.gz$//' \
        -e 's#^/lib/systemd/#/usr/lib/systemd/#' | grep -v -e '^/usr/share/doc/' -e '^/usr/share/lintian/' | sort
}
rpm_files() {
    rpm -qp --qf '[%{FILEMODES:perms} %{FILENAMES}\n]' "$1" | awk '$1 ~ /^-/ { print $2 }' |
        sed -e 's/\.gz$//' | grep -v -e '^/usr/share/doc/' -e '^/usr/share/licenses/' -e '^/usr/lib/\.build-id/' | sort
}
rpmfile=""
if ! have rpmbuild; then
    skip "rpm: rpmbuild missing (make package-deps)"
elif "$MAKE" --no-print-directory rpm >"$tmp/rpm.log" 2>&1; then
    rpmfile=$(ls "$BUILD"/pgrouter-"$VERSION"-*.rpm 2>/dev/null | head -n 1)
fi
if have rpmbuild && [ -z "$rpmfile" ]; then
    fail "make rpm"
    tail -n 40 "$tmp/rpm.log" | indent
elif [ -n "$rpmfile" ]; then
    ok "make rpm built $rpmfile"
    echo "      rpm -qlp:"
    rpm -qlp "$rpmfile" | indent
    check "the .rpm's version is $VERSION" test "$(rpm -qp --qf '%{VERSION}' "$rpmfile")" = "$VERSION"
    check "the .rpm marks both configuration files %config(noreplace)" sh -c \
        'c=$(rpm -qp --qf "[%{FILEFLAGS:fflags} %{FILENAMES}\n]" "$1") &&
         echo "$c" | grep -qx "cn /etc/pgrouter/pgrouter.conf" && echo "$c" | grep -qx "cn /etc/pgrouter/hba.conf"' \
        sh "$rpmfile"
    check "the .rpm creates the user in %pre and has systemd scriptlets" sh -c \
        's=$(rpm -qp --scripts "$1") && echo "$s" | grep -q "useradd -r" &&
         echo "$s" | grep -q "preset pgrouter.service" && echo "$s" | grep -q "try-restart pgrouter.service"' sh "$rpmfile"
    if [ -n "$deb" ] && [ -f "$deb" ]; then
        deb_files "$deb" >"$tmp/deb.files"
        rpm_files "$rpmfile" >"$tmp/rpm.files"
        if diff -u "$tmp/deb.files" "$tmp/rpm.files" >"$tmp/files.diff"; then
            ok "the .rpm and the .deb install the same files ($(wc -l <"$tmp/rpm.files") files)"
        else
            fail "the .rpm and the .deb install different files"
            indent <"$tmp/files.diff"
        fi
    else
        skip "file list comparison: no .deb"
    fi
fi

echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
