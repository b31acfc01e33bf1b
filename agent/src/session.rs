//! What one connection has told the agent about its client, kept for the answers that depend on
//! it. Requests are routed in order on the connection's reading task, so the session is plain
//! data that routing reads and updates.

/// The client software a connection announced in ApiVersions (v3+).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Client {
    /// Anything else, or a client that never said: Java, KafkaJS, kafka-python, franz-go... They
    /// put every partition of a broker in one ProduceRequest.
    #[default]
    Other,
    /// librdkafka 2.10 or later, or a client built on it (confluent-kafka-python, -go, ...),
    /// which sends one ProduceRequest per partition and so is given several broker ids per
    /// agent (see [`crate::brokers`]). Before 2.10 librdkafka matched brokers by address, and
    /// several ids at one address made it move one connection from id to id (librdkafka #4212),
    /// so older versions are `Other`.
    Librdkafka,
}

/// The first librdkafka that tells brokers apart by id alone.
const LIBRDKAFKA_DISTINCT_IDS: (u32, u32) = (2, 10);

impl Client {
    /// From ApiVersions' `client_software_name` and `client_software_version`. librdkafka
    /// names itself `librdkafka` with its version; the Confluent clients put librdkafka's
    /// version after their own (`2.12.0-rdkafka-2.16.0`).
    pub fn from_software(name: &str, version: &str) -> Self {
        let librdkafka = if name == "librdkafka" {
            Some(version)
        } else {
            version.split_once("rdkafka-").map(|(_, v)| v)
        };
        match librdkafka.and_then(major_minor) {
            Some(v) if v >= LIBRDKAFKA_DISTINCT_IDS => Self::Librdkafka,
            _ => Self::Other,
        }
    }
}

/// `2.16.0`, `v2.16.0` or `2.16.0-RC1` as (2, 16).
fn major_minor(version: &str) -> Option<(u32, u32)> {
    let mut parts = version.trim_start_matches('v').split(['.', '-']);
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

#[derive(Debug, Default)]
pub struct Session {
    /// The client's address, as `host:port`.
    pub peer: String,
    pub client: Client,
}

impl Session {
    pub fn new(peer: String) -> Self {
        Self {
            peer,
            client: Client::Other,
        }
    }

    /// Whether this connection's client is given every slot of every agent as a broker.
    pub fn slotted(&self) -> bool {
        self.client == Client::Librdkafka
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn librdkafka_and_the_clients_on_it_are_told_apart() {
        for (name, version) in [
            ("librdkafka", "2.16.0"),
            ("librdkafka", "v2.10.0-RC3"),
            ("confluent-kafka-python", "2.12.0-rdkafka-2.16.0"),
            ("confluent-kafka-go", "v2.11.0-librdkafka-v2.11.0"),
            ("librdkafka", "3.0.0"),
        ] {
            assert_eq!(
                Client::from_software(name, version),
                Client::Librdkafka,
                "{name}"
            );
        }
        for (name, version) in [
            // Before 2.10, several ids at one address confuse librdkafka.
            ("librdkafka", "2.0.2"),
            ("confluent-kafka-python", "2.3.0-rdkafka-2.3.0"),
            ("confluent-kafka-dotnet", "2.6.0"),
            ("librdkafka", "garbage"),
            ("librdkafka", ""),
            ("apache-kafka-java", "3.9.0"),
            ("kafka-python", "2.2.0"),
            ("kafkajs", ""),
            ("", ""),
        ] {
            assert_eq!(
                Client::from_software(name, version),
                Client::Other,
                "{name}"
            );
        }
    }
}
