import { useRemoteStore } from './remote-store.js';
import { defineServerScenarios } from './scenarios.js';

// The foundation's scenarios, unchanged, with repositories on S3 (Swift's s3api; refs in etcd).
const skip = await useRemoteStore('s3', 'end-to-end scenarios on S3');
defineServerScenarios('http', 0, skip === undefined ? {} : { skip });
