//! SUNAT UBL 2.1 documents (work in progress).
