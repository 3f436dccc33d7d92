"""Ingest: from uploaded PDFs to clean page text.

Where a partition's PDFs come from and which ones changed (`raw_sources`, `upload_tracking`), text
extraction page by page with a status per file (`pdf_extraction`), OCR of scanned pages (`ocr`),
cleaning of the extracted text (`text_cleaning`), and the deterministic sample corpus used by local
runs and tests (`sample_data`).
"""
