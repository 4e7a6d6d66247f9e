package io.walsaga.cdc;

import java.lang.reflect.Field;
import java.time.Duration;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.Lock;

import org.apache.kafka.connect.source.SourceRecord;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import io.debezium.connector.base.ChangeEventQueue;
import io.debezium.connector.postgresql.PostgresConnectorTask;
import io.debezium.connector.postgresql.PostgresStreamingChangeEventSource;

/**
 * Debezium 3.6.1's Postgres task with an idle poll that sleeps instead of spinning, and a WAL reader whose idle pause
 * ends when the server sends the next change ({@link WalWait}).
 * <p>
 * When its queue stays empty, {@code ChangeEventQueue.poll()} waits for the poll interval in whole milliseconds, and its
 * timer counts as expired only once the elapsed milliseconds exceed the interval: in the last millisecond the wait is
 * 0 ms and the loop spins until the clock ticks over. That is up to 1 ms of CPU per empty poll, 2-2.5 % of a core per
 * connector at {@code poll.interval.ms} 40, measured with a JFR recording and per-thread CPU of the idle worker
 * (docs/benchmarks/FINDINGS.md).
 * <p>
 * This task waits on the queue's own condition, in nanoseconds, until a record is queued or the poll interval has
 * passed. A record still wakes it at once: with {@code max.batch.size} 1, the queue signals that condition on every
 * record. When the wait ends empty, the poll returns no records, as Debezium's would, and Connect polls again. When
 * records are queued, or a producer error is pending, it hands over to Debezium's own poll, which then does not wait.
 * A connector with a larger {@code max.batch.size} (the queue then signals only full batches) polls as Debezium does.
 * If Debezium's internals ever differ from what this class reads, it logs once and polls as Debezium does.
 */
public class QuietPostgresConnectorTask extends PostgresConnectorTask {

    private static final Logger LOGGER = LoggerFactory.getLogger(QuietPostgresConnectorTask.class);

    private Field queueField;
    private IdleWait idleWait;
    private boolean fallenBack;
    private Object walWaitSource;
    private boolean walWaitRefused;

    @Override
    public List<SourceRecord> doPoll() throws InterruptedException {
        installWalWait();
        IdleWait wait = idleWait();
        if (wait != null && !wait.untilQueuedOrInterval()) {
            return Collections.emptyList();
        }
        return super.doPoll();
    }

    /**
     * The WAL reader's idle pause on the replication socket ({@link WalWait}), put into each streaming source the
     * coordinator starts (a task that restarts after a retriable error starts a new one).
     */
    void installWalWait() {
        if (walWaitRefused || coordinator == null) {
            return;
        }
        Object source = coordinator.getStreamingSource().orElse(null);
        if (source == null || source == walWaitSource) {
            return;
        }
        walWaitSource = source;
        if (source instanceof PostgresStreamingChangeEventSource streaming) {
            walWaitRefused = !WalWait.install(streaming);
        }
    }

    /**
     * The wait on the task's current queue. Read on every poll: a task that restarts after a retriable error (the
     * database went away) builds a new queue, and a wait on the old one would never see a record again.
     */
    IdleWait idleWait() {
        if (fallenBack) {
            return null;
        }
        try {
            if (queueField == null) {
                queueField = accessible(PostgresConnectorTask.class, "queue");
            }
            ChangeEventQueue<?> queue = (ChangeEventQueue<?>) queueField.get(this);
            if (queue == null) {
                return null; // not started yet: Debezium's poll knows what to do
            }
            if (idleWait == null || idleWait.queue != queue) {
                idleWait = IdleWait.of(queue);
            }
            return idleWait.applies ? idleWait : null;
        }
        catch (ReflectiveOperationException | ClassCastException e) {
            fallenBack = true;
            LOGGER.warn("walsaga: cannot wait on Debezium's change event queue ({}); polling as Debezium does", e.toString());
            return null;
        }
    }

    static Field accessible(Class<?> owner, String name) throws NoSuchFieldException {
        Field field = owner.getDeclaredField(name);
        field.setAccessible(true);
        return field;
    }

    static <T> T readField(Class<?> owner, Object target, String name, Class<T> type) throws ReflectiveOperationException {
        return type.cast(accessible(owner, name).get(target));
    }

    /** The queue's lock and its "records to hand over" condition, which every enqueue of a full batch signals. */
    static final class IdleWait {
        private final ChangeEventQueue<?> queue;
        private final Lock lock;
        private final Condition recordsQueued;
        private final Field producerException;
        private final long intervalNanos;
        // the queue signals only a full batch: with max.batch.size > 1 a lone record would wait a whole interval
        // here and then Debezium's poll would wait again for the batch to fill, so such a queue keeps Debezium's poll
        private final boolean applies;

        private IdleWait(ChangeEventQueue<?> queue, Lock lock, Condition recordsQueued, Field producerException, Duration interval,
                         int maxBatchSize) {
            this.applies = maxBatchSize == 1;
            this.queue = queue;
            this.lock = lock;
            this.recordsQueued = recordsQueued;
            this.producerException = producerException;
            this.intervalNanos = interval.toNanos();
        }

        static IdleWait of(ChangeEventQueue<?> queue) throws ReflectiveOperationException {
            Field error = accessible(ChangeEventQueue.class, "producerException");
            Lock lock = readField(ChangeEventQueue.class, queue, "lock", Lock.class);
            Condition recordsQueued = readField(ChangeEventQueue.class, queue, "isFull", Condition.class);
            Duration interval = readField(ChangeEventQueue.class, queue, "pollInterval", Duration.class);
            if (lock == null || recordsQueued == null || interval == null) {
                throw new NoSuchFieldException("the change event queue has no lock, condition or poll interval");
            }
            return new IdleWait(queue, lock, recordsQueued, error, interval,
                    accessible(ChangeEventQueue.class, "maxBatchSize").getInt(queue));
        }

        /** True when a record is queued or a producer error waits to be thrown; false after an empty interval. */
        boolean untilQueuedOrInterval() throws InterruptedException {
            long left = intervalNanos;
            lock.lock();
            try {
                while (!somethingToHandOver()) {
                    if (left <= 0) {
                        return false;
                    }
                    left = recordsQueued.awaitNanos(left);
                }
                return true;
            }
            finally {
                lock.unlock();
            }
        }

        private boolean somethingToHandOver() {
            if (queue.remainingCapacity() < queue.totalCapacity()) {
                return true;
            }
            try {
                return producerException.get(queue) != null;
            }
            catch (IllegalAccessException e) {
                return true; // let Debezium's poll look
            }
        }
    }
}
