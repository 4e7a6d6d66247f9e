package io.walsaga.cdc;

import org.apache.kafka.connect.connector.Task;

import io.debezium.connector.postgresql.PostgresConnector;

/**
 * Debezium's Postgres connector, unchanged but for its task class: {@link QuietPostgresConnectorTask}.
 * Its configuration is Debezium's.
 */
public class QuietPostgresConnector extends PostgresConnector {

    @Override
    public Class<? extends Task> taskClass() {
        return QuietPostgresConnectorTask.class;
    }
}
