//! Host tests: the tables read back with independent parsers.
