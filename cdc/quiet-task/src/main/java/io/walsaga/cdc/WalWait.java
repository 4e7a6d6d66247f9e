package io.walsaga.cdc;

import java.io.IOException;
import java.lang.reflect.Field;
import java.lang.reflect.Method;
import java.net.SocketTimeoutException;
import java.time.Duration;
import java.util.concurrent.atomic.AtomicReference;

import org.postgresql.core.PGStream;
import org.postgresql.core.QueryExecutorBase;
import org.postgresql.core.VisibleBufferedInputStream;
import org.postgresql.core.v3.CopyOperationImpl;
import org.postgresql.core.v3.replication.V3PGReplicationStream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import io.debezium.config.CommonConnectorConfig;
import io.debezium.connector.postgresql.PostgresStreamingChangeEventSource;
import io.debezium.util.DelayStrategy;

/**
 * The WAL reader's idle pause, ended as soon as the server sends something on the replication connection.
 * <p>
 * Debezium's streaming loop reads the replication stream without blocking and, after five empty reads, sleeps
 * {@code poll.interval.ms} ({@code pauseNoMessage}, a constant delay). So a change committed while the reader sleeps
 * waits for the rest of that sleep: half the interval on average, on every CDC hop. This pause waits on the
 * replication socket itself (a peek with a read timeout of {@link #SOCKET_WAIT_MILLIS} or the poll interval, whichever
 * is longer): the first byte of the next message ends it, and stays in the stream's buffer for Debezium's next read.
 * Nothing else changes: the loop, the reads, the records and the offsets stay Debezium's. If the socket cannot be
 * reached (Debezium's or pgjdbc's internals differ from what this class reads, or the stream is being replaced), it
 * sleeps the poll interval as Debezium's pause does.
 */
final class WalWait implements DelayStrategy {

    private static final Logger LOGGER = LoggerFactory.getLogger(WalWait.class);

    /**
     * The longest wait on the socket, when that is longer than the poll interval: a change ends the wait at once, so
     * this only sets how often an idle reader wakes (its heartbeats and status updates come every 10 s) and how long a
     * stopping task may wait for it.
     */
    static final int SOCKET_WAIT_MILLIS = 500;

    private final AtomicReference<?> currentStream;
    private final int intervalMillis;
    private final int socketWaitMillis;
    private Object knownStream;
    private PGStream knownSocket;
    private boolean fallenBack;

    WalWait(AtomicReference<?> currentStream, Duration interval) {
        this.currentStream = currentStream;
        this.intervalMillis = (int) Math.max(1, interval.toMillis());
        this.socketWaitMillis = Math.max(intervalMillis, SOCKET_WAIT_MILLIS);
    }

    /**
     * Puts a WalWait in place of the streaming source's pause; false when that source's fields are not what this
     * class expects (it then keeps Debezium's pause).
     */
    static boolean install(PostgresStreamingChangeEventSource source) {
        try {
            Field pause = QuietPostgresConnectorTask.accessible(PostgresStreamingChangeEventSource.class, "pauseNoMessage");
            if (pause.get(source) instanceof WalWait) {
                return true;
            }
            AtomicReference<?> stream = QuietPostgresConnectorTask.readField(PostgresStreamingChangeEventSource.class, source,
                    "replicationStream", AtomicReference.class);
            CommonConnectorConfig config = QuietPostgresConnectorTask.readField(PostgresStreamingChangeEventSource.class, source,
                    "connectorConfig", CommonConnectorConfig.class);
            pause.set(source, new WalWait(stream, config.getPollInterval()));
            LOGGER.info("walsaga: the WAL reader's idle pause now ends when the server sends the next change");
            return true;
        }
        catch (ReflectiveOperationException | RuntimeException e) {
            LOGGER.warn("walsaga: cannot wait on the replication socket ({}); the WAL reader sleeps as Debezium's does", e.toString());
            return false;
        }
    }

    @Override
    public boolean sleepWhen(boolean criteria) {
        if (!criteria) {
            return false;
        }
        PGStream socket = socket();
        if (socket == null || !waitForData(socket, socketWaitMillis)) {
            sleep(intervalMillis);
        }
        return true;
    }

    /**
     * Waits up to {@code millis} for the server to send a byte, without taking it from the stream. False when the wait
     * failed at once (the connection is broken or closed): the caller then sleeps, and Debezium's next read sees the
     * error.
     */
    static boolean waitForData(PGStream socket, int millis) {
        if (buffered(socket)) {
            // Debezium's last read left bytes it did not take (e.g. the CommandComplete a walsender sends as it shuts
            // down): a peek would return at once, every time, and the reader would spin until its connection probe
            // fails. Sleeping the interval is what Debezium's pause does there.
            return false;
        }
        int before;
        try {
            before = socket.getNetworkTimeout();
        }
        catch (IOException e) {
            return false;
        }
        try {
            socket.setNetworkTimeout(millis);
            socket.peekChar();
            return true;
        }
        catch (SocketTimeoutException e) {
            return true; // the interval passed with nothing sent
        }
        catch (IOException e) {
            return false;
        }
        finally {
            try {
                socket.setNetworkTimeout(before);
            }
            catch (IOException ignored) {
                // the connection is gone: Debezium's next read reports it
            }
        }
    }

    /**
     * True when the stream's own buffer holds bytes already read from the socket (false when that cannot be told). Its
     * {@code available()} would also count what waits in the socket, which is news the wait must return on.
     */
    static boolean buffered(PGStream socket) {
        try {
            Object input = QuietPostgresConnectorTask.accessible(PGStream.class, "pgInput").get(socket);
            Class<?> type = VisibleBufferedInputStream.class;
            return QuietPostgresConnectorTask.accessible(type, "endIndex").getInt(input)
                    > QuietPostgresConnectorTask.accessible(type, "index").getInt(input);
        }
        catch (ReflectiveOperationException | RuntimeException e) {
            return false;
        }
    }

    /** The socket under the current replication stream, looked up again whenever Debezium replaces the stream. */
    private PGStream socket() {
        if (fallenBack) {
            return null;
        }
        Object stream = currentStream.get();
        if (stream == null) {
            return null;
        }
        if (stream != knownStream) {
            try {
                knownSocket = socketOf(stream);
                knownStream = stream;
            }
            catch (ReflectiveOperationException | RuntimeException e) {
                fallenBack = true;
                LOGGER.warn("walsaga: cannot reach the replication socket ({}); the WAL reader sleeps as Debezium's does", e.toString());
                return null;
            }
        }
        return knownSocket;
    }

    /**
     * Debezium's replication stream (an anonymous class in PostgresReplicationConnection) holds pgjdbc's
     * PGReplicationStream; that one's copy operation holds the connection's query executor, which holds its PGStream.
     */
    static PGStream socketOf(Object debeziumStream) throws ReflectiveOperationException {
        Field pg = QuietPostgresConnectorTask.accessible(debeziumStream.getClass(), "val$stream");
        V3PGReplicationStream replication = (V3PGReplicationStream) pg.get(debeziumStream);
        Object copy = QuietPostgresConnectorTask.readField(V3PGReplicationStream.class, replication, "copyDual", Object.class);
        Method executor = CopyOperationImpl.class.getDeclaredMethod("getQueryExecutor");
        executor.setAccessible(true);
        Object queryExecutor = executor.invoke(copy);
        return QuietPostgresConnectorTask.readField(QueryExecutorBase.class, queryExecutor, "pgStream", PGStream.class);
    }

    private static void sleep(int millis) {
        try {
            Thread.sleep(millis);
        }
        catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
