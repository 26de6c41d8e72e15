#!/usr/bin/env bash
# Apache Kafka 3.9 KRaft, one node (broker+controller), on 127.0.0.1:9092 (controller 9093).
# Jars come from Maven Central through infra/kafka/pom.xml (~/.m2 caches them); no Docker.
# Usage: infra/kafka.sh start|stop|status
source "$(dirname "$0")/lib.sh"

BROKERS=127.0.0.1:9092 # never "localhost": Node may resolve it to ::1
LIBS=$STATE/kafka-libs
DIR=$STATE/kafka

ready() { node "$REPO/infra/wait-kafka.mjs" "$BROKERS" "${1:-2}" >/dev/null 2>&1; }

gather_jars() {
  local sum; sum=$(sha256sum "$REPO/infra/kafka/pom.xml" | cut -d' ' -f1)
  [[ -f $LIBS/.pom.sha256 && $(cat "$LIBS/.pom.sha256") == "$sum" ]] && return 0
  say "gathering the broker classpath from Maven Central into $LIBS"
  rm -rf "$LIBS"
  mvn_fetch "$REPO/infra/kafka/pom.xml" -DoutputDirectory="$LIBS"
  echo "$sum" >"$LIBS/.pom.sha256"
}

write_config() {
  mkdir -p "$DIR/data"
  cat >"$DIR/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:9093
listeners=PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093
advertised.listeners=PLAINTEXT://127.0.0.1:9092
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$DIR/data
# One node: internal topics cannot have more replicas than brokers; one partition keeps
# the consumer-offsets and transaction topics cheap to create on a 2-core machine.
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
# Topics are created explicitly by the topic catalog, never by a stray produce/fetch.
num.partitions=1
auto.create.topics.enable=false
# Tests start consumer groups all the time; the default 3 s join delay would add up.
group.initial.rebalance.delay.ms=0
PROPS
}

start() {
  ready && { say "already running at $BROKERS"; return 0; }
  if ! pid_alive kafka; then
    java_ensure
    [[ -d $REPO/node_modules/kafkajs ]] || ensure_node_deps # the readiness check is a kafkajs client
    gather_jars
    write_config
    # The id is the last line: log4j may print its own lines to stdout before it.
    [[ -s $DIR/cluster.id ]] || java -cp "$LIBS/*" -Dlog4j.configuration="file:$REPO/infra/kafka/log4j.properties" \
      kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n1 >"$DIR/cluster.id"
    java -cp "$LIBS/*" -Dlog4j.configuration="file:$REPO/infra/kafka/log4j.properties" \
      kafka.tools.StorageTool format -t "$(cat "$DIR/cluster.id")" -c "$DIR/server.properties" --ignore-formatted >>"$STATE/kafka.log" 2>&1
    spawn kafka java -Xmx1g -Xms256m -Djava.awt.headless=true \
      -Dlog4j.configuration="file:$REPO/infra/kafka/log4j.properties" \
      -cp "$LIBS/*" kafka.Kafka "$DIR/server.properties"
  fi
  wait_ready kafka 120 ready 3
  say "ready at $BROKERS"
}

case ${1:-} in
  start) start ;;
  stop) stop_pid kafka 30 ;;
  status) if ready; then say "running at $BROKERS"; else say "not running"; exit 1; fi ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
