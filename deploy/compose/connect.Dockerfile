# Kafka Connect for docker-compose*.yml: Debezium's 3.6.1 image plus walsaga's Postgres task (cdc/quiet-task), the
# connector class every outbox connector names (connectors/_outbox-defaults.json). The local stack builds the same
# jar into its Debezium plugin directory (stack/install.sh).
FROM maven:3.9-eclipse-temurin-17 AS quiet-task
WORKDIR /build
COPY cdc/quiet-task/pom.xml cdc/quiet-task/
COPY cdc/quiet-task/src cdc/quiet-task/src
RUN cd cdc/quiet-task && mvn -B -ntp -q package

FROM quay.io/debezium/connect:3.6.1.Final
# next to Debezium's own jars: one plugin, one class loader
COPY --from=quiet-task /build/cdc/quiet-task/target/walsaga-debezium-quiet-task.jar /kafka/connect/debezium-connector-postgres/
