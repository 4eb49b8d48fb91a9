//! Prometheus exporter for MongoDB Atlas Cloud Backup snapshot export jobs.
