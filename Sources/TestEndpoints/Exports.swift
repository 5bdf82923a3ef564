// The sample PDFs the endpoints' users (the testbed, the bench, the tests) drop next to them.
@_exported import SampleDocuments
