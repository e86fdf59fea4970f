import { defineServerScenarios } from './scenarios.js';

defineServerScenarios('git', 2);
