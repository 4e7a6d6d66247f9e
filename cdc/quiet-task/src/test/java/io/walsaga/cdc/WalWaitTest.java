package io.walsaga.cdc;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.OutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;

import javax.net.SocketFactory;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.postgresql.core.PGStream;
import org.postgresql.core.QueryExecutorBase;
import org.postgresql.core.v3.CopyOperationImpl;
import org.postgresql.core.v3.replication.V3PGReplicationStream;
import org.postgresql.util.HostSpec;

import io.debezium.connector.postgresql.PostgresStreamingChangeEventSource;
import io.debezium.util.DelayStrategy;

/**
 * The WAL reader's pause on a real pgjdbc {@link PGStream} over a local socket (the server's side is this test), and the
 * fields of Debezium 3.6.1 and pgjdbc 42.7.11 it reads by reflection.
 */
class WalWaitTest {

    private ServerSocket server;
    private Socket serverSide;
    private PGStream stream;

    @BeforeEach
    void connect() throws Exception {
        server = new ServerSocket(0, 1, InetAddress.getLoopbackAddress());
        CompletableFuture<Socket> accepted = CompletableFuture.supplyAsync(() -> {
            try {
                return server.accept();
            }
            catch (java.io.IOException e) {
                throw new IllegalStateException(e);
            }
        });
        stream = new PGStream(SocketFactory.getDefault(), new HostSpec("127.0.0.1", server.getLocalPort()), 10_000, 8192);
        stream.setNetworkTimeout(10_000); // the stream's own read timeout, which each wait must put back
        serverSide = accepted.get(60, TimeUnit.SECONDS);
    }

    @AfterEach
    void close() throws Exception {
        stream.close();
        serverSide.close();
        server.close();
    }

    @Test
    void aByteFromTheServerEndsTheWaitAndStaysInTheStream() throws Exception {
        // a ten-minute interval: only the server's byte can end this wait within the bound below
        CompletableFuture<Boolean> waited = CompletableFuture.supplyAsync(() -> WalWait.waitForData(stream, 600_000));
        Thread.sleep(200);
        assertFalse(waited.isDone(), "the wait ended with nothing sent");
        OutputStream out = serverSide.getOutputStream();
        out.write('k');
        out.flush();
        assertTrue(waited.get(60, TimeUnit.SECONDS));
        assertEquals('k', stream.receiveChar(), "the wait took the byte from the stream");
        assertEquals(10_000, stream.getNetworkTimeout(), "the stream's own read timeout was not put back");
    }

    @Test
    void withNothingSentTheWaitLastsTheInterval() throws Exception {
        long start = System.nanoTime();
        assertTrue(WalWait.waitForData(stream, 300));
        assertTrue(System.nanoTime() - start >= TimeUnit.MILLISECONDS.toNanos(250), "it returned before the interval");
        assertEquals(10_000, stream.getNetworkTimeout());
    }

    @Test
    void bytesTheReaderLeftInTheBufferAreNotWaitedOn() throws Exception {
        // a walsender shutting down sends CommandComplete, which Debezium's non-blocking read leaves in the buffer:
        // a wait that returned at once on it, every time, would spin the reader
        OutputStream out = serverSide.getOutputStream();
        out.write('C');
        out.flush();
        assertTrue(WalWait.waitForData(stream, 600_000), "the first byte from the server ends the wait");
        assertTrue(WalWait.buffered(stream), "the peek leaves the byte in the stream's buffer");
        assertFalse(WalWait.waitForData(stream, 600_000), "a byte already in the buffer must make the caller sleep");
        assertEquals('C', stream.receiveChar());
        assertFalse(WalWait.buffered(stream));
    }

    @Test
    void aByteStillInTheSocketIsNewsNotLeftovers() throws Exception {
        OutputStream out = serverSide.getOutputStream();
        out.write('k');
        out.flush();
        Thread.sleep(200); // in the client's socket, not yet in the stream's buffer
        assertFalse(WalWait.buffered(stream));
        assertTrue(WalWait.waitForData(stream, 600_000));
    }

    @Test
    void aClosedConnectionEndsTheWaitAsFailed() throws Exception {
        serverSide.close();
        assertFalse(WalWait.waitForData(stream, 600_000), "a closed connection must not be waited on (nor spun on)");
    }

    @Test
    void withoutAReachableSocketItSleepsTheIntervalAsDebeziumsPauseDoes() {
        DelayStrategy pause = new WalWait(new AtomicReference<>(), Duration.ofMillis(300));
        long start = System.nanoTime();
        assertTrue(pause.sleepWhen(true));
        assertTrue(System.nanoTime() - start >= TimeUnit.MILLISECONDS.toNanos(250));
        assertFalse(pause.sleepWhen(false));
    }

    @Test
    void theFieldsItReadsAreThere() throws Exception {
        assertEquals(DelayStrategy.class,
                QuietPostgresConnectorTask.accessible(PostgresStreamingChangeEventSource.class, "pauseNoMessage").getType());
        assertEquals(AtomicReference.class,
                QuietPostgresConnectorTask.accessible(PostgresStreamingChangeEventSource.class, "replicationStream").getType());
        QuietPostgresConnectorTask.accessible(PostgresStreamingChangeEventSource.class, "connectorConfig");
        Class<?> debeziumStream = Class.forName("io.debezium.connector.postgresql.connection.PostgresReplicationConnection$1");
        QuietPostgresConnectorTask.accessible(debeziumStream, "val$stream");
        QuietPostgresConnectorTask.accessible(V3PGReplicationStream.class, "copyDual");
        CopyOperationImpl.class.getDeclaredMethod("getQueryExecutor");
        assertEquals(PGStream.class, QuietPostgresConnectorTask.accessible(QueryExecutorBase.class, "pgStream").getType());
    }
}
