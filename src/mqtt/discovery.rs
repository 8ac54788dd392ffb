//! Home Assistant discovery configs and the topics they name.
