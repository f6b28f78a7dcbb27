// pgJDBC for drivers_test.cc, run with `java -cp postgresql.jar JdbcScenario.java`:
// prepareThreshold=1 (server-side named statements from the first use) for prepared reads
// and writes, batches (executeBatch: many Parse/Bind/Execute before one Sync), a batch with
// a failing statement, a transaction committed and one rolled back, and `SELECT TABLE_f()`
// (a function that writes) prepared in a session that has not written yet. Scenario
// "autosave" (URLs with autosave=always or conservative: BEGIN goes out as unsynced
// Parse/Bind/Execute, then a simple SAVEPOINT) runs transactions with writes, reads and a
// failing statement; "shape" runs a prepared SELECT *, ALTER TABLE ... ADD COLUMN from another
// connection (to the primary, whose port comes first in DRV_SHAPE_PORTS, then every node has
// it), the statement again. Takes SCENARIO then pairs URL TABLE (each TABLE exists: id int
// PRIMARY KEY, v text; empty, or with the row (1, 'one') for "shape"; TABLE_f() inserts a
// row) and prints, for each pair, "== run N" and one line per
// observation; the test compares the runs.
import java.sql.BatchUpdateException;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

public class JdbcScenario {
    private static final List<String> out = new ArrayList<>();

    private static void log(String line) {
        out.add(line);
    }

    private static String rows(ResultSet rs) throws SQLException {
        StringBuilder sb = new StringBuilder();
        int n = rs.getMetaData().getColumnCount();
        while (rs.next()) {
            if (sb.length() > 0) sb.append(";");
            for (int c = 1; c <= n; c++) {
                if (c > 1) sb.append("|");
                sb.append(rs.getString(c));
            }
        }
        rs.close();
        return sb.toString();
    }

    private static void run(String url, String table) throws SQLException {
        try (Connection conn = DriverManager.getConnection(url)) {
            conn.setAutoCommit(true);
            PreparedStatement ins =
                    conn.prepareStatement("INSERT INTO " + table + " (id, v) VALUES (?, ?)");
            PreparedStatement sel = conn.prepareStatement("SELECT v FROM " + table + " WHERE id = ?");
            PreparedStatement cnt = conn.prepareStatement("SELECT count(*), sum(id) FROM " + table);

            // Settings before any write (reads then use the standbys): a SET through a plain
            // Statement, then one as a server-side prepared statement.
            try (Statement st = conn.createStatement()) {
                st.execute("SET search_path = drv_nowhere, public");
            }
            PreparedStatement path = conn.prepareStatement("SELECT current_setting('search_path')");
            StringBuilder paths = new StringBuilder();
            for (int i = 0; i < 12; i++) paths.append(rows(path.executeQuery())).append(",");
            log("search_path after SET: " + paths);
            // A SET as a server-side prepared statement, then reads that may run anywhere.
            PreparedStatement set = conn.prepareStatement("SET TimeZone = 'Asia/Tokyo'");
            set.execute();
            PreparedStatement zone = conn.prepareStatement("SELECT current_setting('TimeZone')");
            StringBuilder zones = new StringBuilder();
            for (int i = 0; i < 12; i++) zones.append(rows(zone.executeQuery())).append(",");
            log("TimeZone after a prepared SET: " + zones);


            int inserted = 0;
            for (int i = 1; i <= 10; i++) {
                ins.setInt(1, i);
                ins.setString(2, "v" + i);
                inserted += ins.executeUpdate();
            }
            log("prepared inserts: " + inserted);
            StringBuilder read = new StringBuilder();
            for (int i = 1; i <= 10; i++) {
                sel.setInt(1, i);
                read.append(rows(sel.executeQuery())).append(",");
            }
            log("prepared reads: " + read);
            for (int i = 0; i < 5; i++) log("count: " + rows(cnt.executeQuery()));

            for (int i = 11; i <= 60; i++) {
                ins.setInt(1, i);
                ins.setString(2, "batch" + i);
                ins.addBatch();
            }
            int[] counts = ins.executeBatch();
            log("batch: " + counts.length + " statements, sum " + Arrays.stream(counts).sum());
            log("after batch: " + rows(cnt.executeQuery()));

            for (int i = 61; i <= 70; i++) {
                ins.setInt(1, i == 65 ? 5 : i);  // a duplicate key in the middle
                ins.setString(2, "bad batch" + i);
                ins.addBatch();
            }
            try {
                ins.executeBatch();
                log("failing batch: no error");
            } catch (BatchUpdateException e) {
                SQLException next = e.getNextException();
                log("failing batch: " + e.getSQLState() + " counts " + e.getUpdateCounts().length
                        + " next " + (next != null ? next.getSQLState() : "none"));
            }
            log("after failing batch: " + rows(cnt.executeQuery()));
            for (int i = 0; i < 3; i++) {
                sel.setInt(1, 5);
                log("read after failing batch: " + rows(sel.executeQuery()));
            }

            conn.setAutoCommit(false);
            ins.setInt(1, 100);
            ins.setString(2, "committed");
            ins.executeUpdate();
            sel.setInt(1, 100);
            log("in transaction: " + rows(sel.executeQuery()));
            conn.commit();
            ins.setInt(1, 101);
            ins.setString(2, "rolled back");
            ins.executeUpdate();
            for (int i = 102; i <= 110; i++) {
                ins.setInt(1, i);
                ins.setString(2, "rolled back batch");
                ins.addBatch();
            }
            log("batch in transaction: " + Arrays.stream(ins.executeBatch()).sum());
            conn.rollback();
            // An error inside a transaction: later statements fail until the rollback.
            ins.setInt(1, 111);
            ins.setString(2, "in a failed transaction");
            ins.executeUpdate();
            for (int id : new int[] {1, 112}) {
                try {
                    ins.setInt(1, id);
                    ins.executeUpdate();
                    log("in a failed transaction: no error");
                } catch (SQLException e) {
                    log("in a failed transaction: " + e.getSQLState());
                }
            }
            conn.rollback();
            conn.setAutoCommit(true);
            log("after commit and rollback: " + rows(cnt.executeQuery()));

            try (Statement st = conn.createStatement()) {
                st.execute("SELECT 1/0");
            } catch (SQLException e) {
                log("simple error: " + e.getSQLState());
            }
            for (int i = 0; i < 3; i++) log("count again: " + rows(cnt.executeQuery()));
            try (Statement st = conn.createStatement()) {
                log("digest: " + rows(st.executeQuery(
                        "SELECT md5(string_agg(id || v, ',' ORDER BY id)) FROM " + table)));
            }
        }
    }

    // A write hidden in a function, first thing in the session, as a server-side prepared
    // statement; then a plain read.
    private static void replay(String url, String table) throws SQLException {
        try (Connection conn = DriverManager.getConnection(url)) {
            PreparedStatement f = conn.prepareStatement("SELECT " + table + "_f()");
            StringBuilder got = new StringBuilder();
            for (int i = 0; i < 5; i++) got.append(rows(f.executeQuery())).append(",");
            log("prepared f(): " + got);
            try (Statement st = conn.createStatement()) {
                log("rows f wrote: "
                        + rows(st.executeQuery("SELECT count(*) FROM " + table + " WHERE v = 'f'")));
            }
        }
    }

    private static void autosave(String url, String table) throws SQLException {
        try (Connection conn = DriverManager.getConnection(url)) {
            conn.setAutoCommit(false);
            PreparedStatement ins =
                    conn.prepareStatement("INSERT INTO " + table + " (id, v) VALUES (?, ?)");
            PreparedStatement sel = conn.prepareStatement("SELECT v FROM " + table + " WHERE id = ?");
            PreparedStatement cnt = conn.prepareStatement("SELECT count(*), sum(id) FROM " + table);
            for (int i = 1; i <= 3; i++) {
                ins.setInt(1, i);
                ins.setString(2, "v" + i);
                ins.executeUpdate();
            }
            sel.setInt(1, 2);
            log("read your write: " + rows(sel.executeQuery()));
            ins.setInt(1, 1);
            ins.setString(2, "duplicate");
            try {
                ins.executeUpdate();
                log("duplicate: no error");
            } catch (SQLException e) {
                log("duplicate: " + e.getSQLState());
            }
            try {
                ins.setInt(1, 4);
                ins.setString(2, "after the error");
                ins.executeUpdate();
                log("after the error: " + rows(cnt.executeQuery()));
                conn.commit();
            } catch (SQLException e) {
                log("after the error: " + e.getSQLState());
                conn.rollback();
            }
            log("committed: " + rows(cnt.executeQuery()));
            conn.commit();
            // A transaction that begins with reads, then writes.
            for (int i = 0; i < 3; i++) {
                sel.setInt(1, 1 + i);
                log("read first: " + rows(sel.executeQuery()));
            }
            ins.setInt(1, 10);
            ins.setString(2, "after reads");
            ins.executeUpdate();
            log("then a write: " + rows(cnt.executeQuery()));
            conn.commit();
            // One rolled back.
            ins.setInt(1, 11);
            ins.setString(2, "rolled back");
            ins.executeUpdate();
            conn.rollback();
            for (int i = 0; i < 3; i++) log("final: " + rows(cnt.executeQuery()));
            conn.commit();
        }
        replay(url, table);
    }

    private static String withPort(String url, String port) {
        return url.replaceFirst("//127\\.0\\.0\\.1:[0-9]+/", "//127.0.0.1:" + port + "/");
    }

    private static void shape(String url, String table, String[] ports) throws Exception {
        try (Connection conn = DriverManager.getConnection(url)) {
            conn.setAutoCommit(false);
            PreparedStatement sel = conn.prepareStatement("SELECT * FROM " + table + " WHERE id = ?");
            sel.setInt(1, 1);
            for (int i = 0; i < 2; i++) log("before: " + rows(sel.executeQuery()));
            conn.commit();
            try (Connection other = DriverManager.getConnection(withPort(url, ports[0]));
                    Statement st = other.createStatement()) {
                st.execute("ALTER TABLE " + table + " ADD COLUMN extra int");
            }
            for (String port : ports) {
                try (Connection node = DriverManager.getConnection(withPort(url, port));
                        PreparedStatement has = node.prepareStatement(
                                "SELECT count(*) FROM pg_attribute WHERE attrelid = ?::regclass"
                                + " AND attname = 'extra'")) {
                    has.setString(1, table);
                    long end = System.nanoTime() + 30_000_000_000L;
                    while (!rows(has.executeQuery()).equals("1")) {
                        if (System.nanoTime() > end) throw new SQLException("no column on " + port);
                        Thread.sleep(50);
                    }
                }
            }
            for (int i = 0; i < 3; i++) {
                try {
                    log("after " + i + ": " + rows(sel.executeQuery()));
                } catch (SQLException e) {
                    log("after " + i + ": " + e.getSQLState() + " " + e.getMessage());
                    conn.rollback();
                }
            }
            conn.commit();
        }
    }

    public static void main(String[] args) throws Exception {
        String scenario = args[0];
        for (int i = 1; i + 1 < args.length; i += 2) {
            out.add("== run " + (i / 2 + 1));
            try {
                if (scenario.equals("autosave")) {
                    autosave(args[i], args[i + 1]);
                } else if (scenario.equals("shape")) {
                    shape(args[i], args[i + 1], System.getenv("DRV_SHAPE_PORTS").split(","));
                } else {
                    run(args[i], args[i + 1]);
                    replay(args[i], args[i + 1]);
                }
            } catch (SQLException e) {
                out.add("unexpected: " + e.getSQLState() + " " + e.getMessage());
            }
        }
        System.out.println(String.join("\n", out));
    }
}
