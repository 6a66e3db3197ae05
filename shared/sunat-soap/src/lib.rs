//! SUNAT billService SOAP messages (work in progress).
