import { defineServerScenarios } from './scenarios.js';

defineServerScenarios('http', 2);
