//! SASL authentication (KIP-43, KIP-84, KIP-152, KIP-368): the mechanisms a listener offers and
//! the state of one connection's exchange.

pub mod scram;
