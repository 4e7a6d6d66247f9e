package io.walsaga.cdc;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.reflect.Field;
import java.time.Duration;
import java.util.concurrent.atomic.AtomicBoolean;

import org.junit.jupiter.api.Test;

import io.debezium.connector.base.ChangeEventQueue;
import io.debezium.connector.postgresql.PostgresConnectorTask;
import io.debezium.pipeline.Sizeable;
import io.debezium.util.LoggingContext;

/** The idle wait against Debezium 3.6.1's real {@link ChangeEventQueue}: what it reads by reflection is there. */
class IdleWaitTest {

    record Event(String id) implements Sizeable {
        @Override
        public long objectSize() {
            return id.length();
        }
    }

    private static ChangeEventQueue<Event> queue(Duration pollInterval) {
        return queue(pollInterval, 1);
    }

    private static ChangeEventQueue<Event> queue(Duration pollInterval, int maxBatchSize) {
        return new ChangeEventQueue.Builder<Event>()
                .pollInterval(pollInterval)
                .maxBatchSize(maxBatchSize)
                .maxQueueSize(16)
                .loggingContextSupplier(() -> LoggingContext.forConnector("postgres", "test", "test"))
                .build();
    }

    @Test
    void anEmptyQueueEndsTheWaitWithNothingToHandOver() throws Exception {
        assertFalse(QuietPostgresConnectorTask.IdleWait.of(queue(Duration.ofMillis(20))).untilQueuedOrInterval());
    }

    @Test
    void aQueuedRecordIsHandedOverWithoutWaiting() throws Exception {
        ChangeEventQueue<Event> queue = queue(Duration.ofMinutes(10));
        queue.enqueue(new Event("a"));
        assertTrue(QuietPostgresConnectorTask.IdleWait.of(queue).untilQueuedOrInterval());
        assertTrue(queue.poll().size() == 1);
    }

    @Test
    void aRecordQueuedDuringTheWaitWakesIt() throws Exception {
        // a poll interval of 10 minutes: only the queue's signal can end this wait within the join bound below
        ChangeEventQueue<Event> queue = queue(Duration.ofMinutes(10));
        QuietPostgresConnectorTask.IdleWait wait = QuietPostgresConnectorTask.IdleWait.of(queue);
        AtomicBoolean handedOver = new AtomicBoolean();
        Thread waiter = new Thread(() -> {
            try {
                handedOver.set(wait.untilQueuedOrInterval());
            }
            catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        });
        waiter.start();
        while (waiter.getState() != Thread.State.TIMED_WAITING) { // parked on the queue's condition
            Thread.onSpinWait();
        }
        queue.enqueue(new Event("b"));
        waiter.join(Duration.ofSeconds(60).toMillis());
        assertFalse(waiter.isAlive(), "the queued record did not wake the wait");
        assertTrue(handedOver.get());
    }

    @Test
    void aProducerErrorEndsTheWaitSoDebeziumsPollThrowsIt() throws Exception {
        ChangeEventQueue<Event> queue = queue(Duration.ofMinutes(10));
        queue.producerException(new IllegalStateException("the WAL reader failed"));
        assertTimeoutPreemptively(Duration.ofSeconds(60),
                () -> assertTrue(QuietPostgresConnectorTask.IdleWait.of(queue).untilQueuedOrInterval()));
    }

    @Test
    void aTaskRestartedWithANewQueueWaitsOnTheNewOne() throws Exception {
        // Debezium's task builds a new queue when it restarts after a retriable error (the database went away)
        QuietPostgresConnectorTask task = new QuietPostgresConnectorTask();
        assertTrue(task.idleWait() == null, "no queue before the task has started");
        Field queueField = PostgresConnectorTask.class.getDeclaredField("queue");
        queueField.setAccessible(true);
        ChangeEventQueue<Event> first = queue(Duration.ofMillis(20));
        queueField.set(task, first);
        assertFalse(task.idleWait().untilQueuedOrInterval());
        ChangeEventQueue<Event> second = queue(Duration.ofMinutes(10));
        queueField.set(task, second);
        second.enqueue(new Event("c"));
        assertTrue(task.idleWait().untilQueuedOrInterval(), "the wait still watched the queue of before the restart");
    }

    @Test
    void aConnectorWithLargerBatchesKeepsDebeziumsPoll() throws Exception {
        QuietPostgresConnectorTask task = new QuietPostgresConnectorTask();
        Field queueField = PostgresConnectorTask.class.getDeclaredField("queue");
        queueField.setAccessible(true);
        queueField.set(task, queue(Duration.ofMillis(20), 256));
        assertTrue(task.idleWait() == null, "a queue that signals only full batches must keep Debezium's poll");
        queueField.set(task, queue(Duration.ofMillis(20), 1));
        assertTrue(task.idleWait() != null);
    }
}
