// pgJDBC for drivers_test.cc, run with `java -cp postgresql.jar JdbcScenario.java`:
// prepareThreshold=1 (server-side named statements from the first use) for prepared reads
// and writes, batches (executeBatch: many Parse/Bind/Execute before one Sync), a batch with
// a failing statement, and a transaction committed and one rolled back. Takes pairs
// URL TABLE (each TABLE exists, empty: id int PRIMARY KEY, v text) and prints, for each
// pair, "== run N" and one line per observation; the test compares the runs.
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

    public static void main(String[] args) throws Exception {
        for (int i = 0; i + 1 < args.length; i += 2) {
            out.add("== run " + (i / 2 + 1));
            try {
                run(args[i], args[i + 1]);
            } catch (SQLException e) {
                out.add("unexpected: " + e.getSQLState() + " " + e.getMessage());
            }
        }
        System.out.println(String.join("\n", out));
    }
}
