// The archive round trip on a file:// folder (see test/support/archive-round-trip.ts).
import { roundTripSuite } from './support/archive-round-trip.js';

roundTripSuite('file', true);
