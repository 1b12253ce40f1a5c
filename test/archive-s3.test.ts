// The archive round trip on an S3-compatible server (s3rver on loopback), multipart uploads and
// all (see test/support/archive-round-trip.ts).
import { roundTripSuite } from './support/archive-round-trip.js';

roundTripSuite('s3', false);
