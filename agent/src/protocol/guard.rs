//! Length checks run on a request body before `kafka-protocol` decodes it.
