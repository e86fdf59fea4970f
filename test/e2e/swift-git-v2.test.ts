import { useRemoteStore } from './remote-store.js';
import { defineServerScenarios } from './scenarios.js';

// The foundation's scenarios, unchanged, with repositories on native Swift (refs in etcd).
const skip = await useRemoteStore('swift', 'end-to-end scenarios on Swift');
defineServerScenarios('git', 2, skip === undefined ? {} : { skip });
