import SampleDocuments

/// The tests' PDFs come from the same generator as the demo's sample documents.
public typealias TestPDF = SamplePDF
